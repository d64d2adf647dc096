"""A per-user event memory searched by meaning with embedding cosine: SQLite or PostgreSQL.

``open_store(location)`` picks the backend: a ``postgresql://`` (or ``postgres://``) URL opens a
``PostgresMemoryStore`` (memory_postgres.py: a connection pool, for several action servers sharing one
memory); anything else is a SQLite file path (``SQLiteMemoryStore``, memory_sqlite.py, also importable as
``MemoryStore``, the default). Both implement ``MemoryBackend`` (memory_backend.py) and create their
schema, migrating an older one (``SCHEMA_VERSION``). pgvector is not used: the per-user scan is exact
and bounded by ``MAX_SCAN_ROWS``, which is also how many rows a user keeps (older ones are deleted by ``add``).
"""
import urllib.parse
from pathlib import Path
from typing import Union

from .memory_backend import (
    MAX_EVENT_CHARS,
    MAX_SCAN_ROWS,
    SCHEMA_VERSION,
    Event,
    Match,
    MemoryBackend,
    check_sender,
    rank,
    redact,
)
from .memory_postgres import DEFAULT_POOL_MAX, PG_TABLE, PostgresMemoryStore
from .memory_sqlite import SQLiteMemoryStore

__all__ = ["MAX_EVENT_CHARS", "MAX_SCAN_ROWS", "SCHEMA_VERSION", "DEFAULT_POOL_MAX", "PG_TABLE", "Event", "Match",
           "MemoryBackend", "MemoryStore", "PostgresMemoryStore", "SQLiteMemoryStore", "check_sender", "rank",
           "redact", "is_postgres_url", "open_store"]

POSTGRES_SCHEMES = ("postgresql", "postgres")

#: The SQLite store under its original name (the default backend).
MemoryStore = SQLiteMemoryStore


def is_postgres_url(location: Union[str, Path]) -> bool:
    return isinstance(location, str) and urllib.parse.urlsplit(location).scheme.lower() in POSTGRES_SCHEMES


def open_store(location: Union[str, Path], pool_max: int = DEFAULT_POOL_MAX,
               max_rows: int = MAX_SCAN_ROWS) -> MemoryBackend:
    """The store at ``location``: a ``postgresql://`` URL, else a SQLite file path; each user keeps their
    newest ``max_rows`` events."""
    if is_postgres_url(location):
        return PostgresMemoryStore(str(location), pool_max=pool_max, max_rows=max_rows)
    if isinstance(location, str) and "://" in location:
        raise ValueError(f"memory store {redact(location)!r}: only postgresql:// URLs or SQLite file paths work.")
    return SQLiteMemoryStore(location, max_rows=max_rows)
