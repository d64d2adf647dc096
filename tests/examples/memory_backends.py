"""The memory store's two backends as the store tests see them: where a store lives and raw SQL beside it.

The ``backend`` and ``store`` fixtures (conftest.py) run a test on SQLite and on PostgreSQL.
"""
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from examples.memory_bot.actions.memory import PG_TABLE, MemoryBackend, open_store


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


@dataclass
class Backend:
    """One backend under test: where its store lives and raw SQL access for damage and migration tests."""

    name: str
    location: str
    sql: Callable[[str], Any]  # run one statement outside the store
    table: str

    def open(self) -> MemoryBackend:
        return open_store(self.location)


def sqlite_backend(tmp_path: Path) -> Backend:
    path = tmp_path / "memory.db"

    def run(statement):
        with sqlite3.connect(path) as db:
            return db.execute(statement).fetchall()

    return Backend("sqlite", str(path), run, "events")


def postgres_backend(local_postgres) -> Backend:
    url = local_postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")

    def run(statement):
        import psycopg2

        conn = psycopg2.connect(url)
        try:
            with conn, conn.cursor() as cursor:
                cursor.execute(statement)
                return cursor.fetchall() if cursor.description else []
        finally:
            conn.close()

    return Backend("postgresql", url, run, PG_TABLE)
