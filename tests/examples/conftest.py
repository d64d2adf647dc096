"""Fixtures for the example bots; makes the repository's `examples` package importable."""
import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
# The actions module would load the student at import; the tests load it per fixture.
os.environ.setdefault("MEMORY_BOT_PRELOAD", "0")


@pytest.fixture
def memory_env(monkeypatch, tmp_path, student_dir) -> Path:
    """Point the memory_bot actions at a fresh SQLite file and the student under test."""
    from examples.memory_bot.actions import settings

    db = tmp_path / "memory.db"
    monkeypatch.setenv(settings.DB_ENV, str(db))
    monkeypatch.setenv(settings.MODEL_ENV, str(student_dir))
    monkeypatch.delenv(settings.MIN_SIMILARITY_ENV, raising=False)
    return db
