"""Where the action server keeps memory and which encoder it uses; read from the environment."""
import os
from pathlib import Path
from typing import Optional

BOT_DIR = Path(__file__).resolve().parents[1]

DB_ENV = "MEMORY_BOT_DB"
MODEL_ENV = "MEMORY_BOT_MODEL"
MIN_SIMILARITY_ENV = "MEMORY_BOT_MIN_SIMILARITY"
# Most PostgreSQL connections one action server process opens (memory.DEFAULT_POOL_MAX when unset).
POOL_MAX_ENV = "MEMORY_BOT_DB_POOL_MAX"
# "0" skips loading the student when the action server imports the actions (tests do).
PRELOAD_ENV = "MEMORY_BOT_PRELOAD"

DEFAULT_DB = BOT_DIR / "memory.db"
# Centered cosine (see embedding.py) below which a stored event does not answer a
# recall question: 0 means "no closer than an average pair of sentences".
DEFAULT_MIN_SIMILARITY = 0.0


def db_location() -> str:
    """The memory store: $MEMORY_BOT_DB (a ``postgresql://`` URL or a SQLite path), else memory.db here."""
    return os.environ.get(DB_ENV) or str(DEFAULT_DB)


def pool_max() -> int:
    """$MEMORY_BOT_DB_POOL_MAX, else memory.DEFAULT_POOL_MAX (PostgreSQL only)."""
    from .memory import DEFAULT_POOL_MAX

    raw = os.environ.get(POOL_MAX_ENV)
    if not raw:
        return DEFAULT_POOL_MAX
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ValueError(f"{POOL_MAX_ENV}={raw!r} is not a positive whole number; set e.g. 4.")
    return int(raw)


def model_dir() -> Optional[str]:
    """A student directory from $MEMORY_BOT_MODEL, else None (the package's default student)."""
    return os.environ.get(MODEL_ENV) or None


def preload() -> bool:
    """Whether to load the student at import time: yes unless $MEMORY_BOT_PRELOAD is 0."""
    return os.environ.get(PRELOAD_ENV, "1").strip() != "0"


def min_similarity() -> float:
    """The recall threshold from $MEMORY_BOT_MIN_SIMILARITY, else ``DEFAULT_MIN_SIMILARITY``."""
    raw = os.environ.get(MIN_SIMILARITY_ENV)
    if not raw:
        return DEFAULT_MIN_SIMILARITY
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{MIN_SIMILARITY_ENV}={raw!r} is not a number; set a cosine in [-1, 1], e.g. 0.1.") from None
    if not -1.0 <= value <= 1.0:
        raise ValueError(f"{MIN_SIMILARITY_ENV}={raw!r} is outside [-1, 1]; set a cosine such as 0.1.")
    return value
