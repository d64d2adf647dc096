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


@pytest.fixture(scope="session")
def memory_bot_model(tmp_path_factory) -> Path:
    """memory_bot trained once per test session (Rasa's cache in the bot directory makes reruns quick)."""
    from examples.memory_bot.servers import BOT_DIR, train

    out = tmp_path_factory.mktemp("memory-bot-model")
    return train(BOT_DIR, out_dir=out, log_path=out / "train.log", fixed_name="memory_bot")


@pytest.fixture(scope="session")
def local_postgres():
    """A throwaway PostgreSQL server on 127.0.0.1 (examples/memory_bot/local_services.py), for the session."""
    from examples.memory_bot.local_services import LocalPostgres

    with LocalPostgres(durable=False) as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def backend(request, tmp_path):
    """A memory store location on SQLite and, slow-marked, on PostgreSQL (memory_backends.py)."""
    from memory_backends import postgres_backend, sqlite_backend

    if request.param == "sqlite":
        return sqlite_backend(tmp_path)
    return postgres_backend(request.getfixturevalue("local_postgres"))


@pytest.fixture
def store(backend):
    """The store opened at ``backend``, closed after the test."""
    opened = backend.open()
    yield opened
    opened.close()
