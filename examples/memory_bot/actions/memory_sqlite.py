"""``SQLiteMemoryStore``: the memory in one SQLite file (the default backend, one action server)."""
import logging
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import List, Union

from .memory_backend import (INSERT_SQL, MAX_SCAN_ROWS, PRUNE_SQL, SCHEMA_VERSION, Event, MemoryBackend, Row,
                             check_max_rows)

logger = logging.getLogger(__name__)

SQLITE_TABLE = """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sender_id TEXT NOT NULL,
        route TEXT NOT NULL,
        text TEXT NOT NULL,
        created_at REAL NOT NULL,
        dim INTEGER NOT NULL,
        embedding BLOB NOT NULL,
        message_id TEXT
    )"""
SQLITE_INDEXES = (
    "CREATE INDEX IF NOT EXISTS events_by_sender ON events (sender_id, created_at)",
    # Newest-first reads of one sender (search's scan, the pruning after each add) walk this index instead
    # of sorting all the sender's rows; added to existing files by the next connection.
    "CREATE INDEX IF NOT EXISTS events_by_sender_id ON events (sender_id, id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS events_by_message ON events (sender_id, message_id) "
    "WHERE message_id IS NOT NULL",
)


class SQLiteMemoryStore(MemoryBackend):
    """Events of many users in one SQLite file; each call opens its own connection.

    A connection per call keeps the store safe to use from the action server's
    threads and lets the file be replaced or inspected between calls. Every
    connection (re)creates the schema when it is missing and migrates a version-1
    file (no message_id column), so a database file that was deleted, emptied or
    truncated to zero bytes while the server runs is repaired by the next call
    instead of failing with "no such table".

    Args:
        path: the SQLite file (created with its folder when missing).
        max_rows: rows each user keeps, newest first; also rows a search scans (see ``MemoryBackend``).
    """

    backend = "sqlite"

    def __init__(self, path: Union[str, Path], max_rows: int = MAX_SCAN_ROWS) -> None:
        self.path = Path(path)
        self.max_rows = check_max_rows(max_rows)
        self._connect().close()  # create the file and schema now; any later call recreates them

    def __repr__(self) -> str:
        return f"SQLiteMemoryStore({str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(self.path), timeout=10)
        try:
            with db:  # idempotent (IF NOT EXISTS) and cheap: microseconds on an existing schema
                db.execute(SQLITE_TABLE)
                if int(db.execute("PRAGMA user_version").fetchone()[0]) < SCHEMA_VERSION:
                    migrate_sqlite(db)
                for statement in SQLITE_INDEXES:
                    db.execute(statement)
        except BaseException:
            db.close()
            raise
        return db

    def check(self) -> None:
        with closing(self._connect()) as db:
            db.execute("SELECT COUNT(*) FROM events WHERE id = ?", (-1,)).fetchone()
            db.execute("BEGIN IMMEDIATE")  # takes the write lock: fails on a read-only or corrupt file
            db.rollback()

    def _insert(self, row: tuple) -> Event:
        with closing(self._connect()) as db, db:
            cursor = db.execute(INSERT_SQL.format(table="events", marks=", ".join("?" * 7)), row)
            if cursor.rowcount == 1:
                event = Event(int(cursor.lastrowid), *row[:4])
                db.execute(PRUNE_SQL.format(table="events", mark="?"), (row[0], row[0], self.max_rows))
                return event
            existing = db.execute(
                "SELECT id, sender_id, route, text, created_at FROM events WHERE sender_id = ? AND message_id = ?",
                (row[0], row[6]),
            ).fetchone()
        return Event(*existing)

    def _select_events(self, sender_id: str) -> List[tuple]:
        with closing(self._connect()) as db:
            return db.execute(
                "SELECT id, sender_id, route, text, created_at FROM events WHERE sender_id = ? ORDER BY id",
                (sender_id,),
            ).fetchall()

    def count(self) -> int:
        with closing(self._connect()) as db:
            return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def _scan(self, sender_id: str, dim: int, limit: int) -> List[Row]:
        with closing(self._connect()) as db:
            return db.execute(
                "SELECT id, sender_id, route, text, created_at, embedding FROM events "
                "WHERE sender_id = ? AND dim = ? ORDER BY id DESC LIMIT ?",
                (sender_id, dim, limit),
            ).fetchall()


def migrate_sqlite(db: sqlite3.Connection) -> None:
    """Bring a file to SCHEMA_VERSION (inside the caller's transaction): version 1 lacks message_id."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
    if "message_id" not in columns:
        logger.info("Memory store: migrating a version-1 SQLite file (adding events.message_id).")
        try:
            db.execute("ALTER TABLE events ADD COLUMN message_id TEXT")
        except sqlite3.OperationalError as e:  # another process migrated it a moment ago
            if "duplicate column" not in str(e):
                raise
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
