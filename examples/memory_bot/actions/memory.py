"""A per-user event memory in SQLite, searched by meaning with embedding cosine.

Every query is parameterized; rows are keyed by the conversation's sender id so
one user never reads another user's events.
"""
import logging
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import List, NamedTuple, Optional, Union

import numpy as np

logger = logging.getLogger(__name__)

# Longer texts are cut before storing: an event is one utterance, and this keeps
# one pasted document from bloating the database.
MAX_EVENT_CHARS = 2000
# Rows scanned per search: the newest ones; enough for a personal assistant.
MAX_SCAN_ROWS = 5000

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sender_id TEXT NOT NULL,
        route TEXT NOT NULL,
        text TEXT NOT NULL,
        created_at REAL NOT NULL,
        dim INTEGER NOT NULL,
        embedding BLOB NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS events_by_sender ON events (sender_id, created_at)",
)


class Event(NamedTuple):
    """One stored event of one user."""

    id: int
    sender_id: str
    route: str
    text: str
    created_at: float


class Match(NamedTuple):
    """A stored event and its cosine similarity to a query."""

    event: Event
    score: float


class MemoryStore:
    """Events of many users in one SQLite file; each call opens its own connection.

    A connection per call keeps the store safe to use from the action server's
    threads and lets the file be replaced or inspected between calls.
    """

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            for statement in SCHEMA:
                db.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(str(self.path), timeout=10)

    def add(self, sender_id: str, route: str, text: str, embedding: np.ndarray,
            created_at: Optional[float] = None) -> Event:
        """Store one event.

        Args:
            sender_id: the conversation's sender id (non-empty).
            route: the route the message took (``action``).
            text: the user's message; cut to ``MAX_EVENT_CHARS``.
            embedding: float array of shape (dim,), stored as float32 bytes.
            created_at: Unix time; now when None.
        """
        check_sender(sender_id)
        vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
        if vector.size == 0 or not np.all(np.isfinite(vector)):
            raise ValueError(f"embedding of shape {np.shape(embedding)} is empty or not finite; pass a (dim,) vector.")
        text = text[:MAX_EVENT_CHARS]
        created_at = time.time() if created_at is None else float(created_at)
        with closing(self._connect()) as db, db:
            cursor = db.execute(
                "INSERT INTO events (sender_id, route, text, created_at, dim, embedding) VALUES (?, ?, ?, ?, ?, ?)",
                (sender_id, route, text, created_at, int(vector.size), vector.tobytes()),
            )
            row_id = int(cursor.lastrowid)
        return Event(row_id, sender_id, route, text, created_at)

    def events(self, sender_id: str) -> List[Event]:
        """All events of one user, oldest first."""
        check_sender(sender_id)
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT id, sender_id, route, text, created_at FROM events WHERE sender_id = ? ORDER BY id",
                (sender_id,),
            ).fetchall()
        return [Event(*row) for row in rows]

    def count(self) -> int:
        """Events of all users."""
        with closing(self._connect()) as db:
            return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def search(self, sender_id: str, query: np.ndarray, min_score: float = -1.0, limit: int = 1,
               center: Optional[np.ndarray] = None) -> List[Match]:
        """The user's events most similar to ``query``, best first.

        Args:
            sender_id: whose events to search; nobody else's are read.
            query: float array of shape (dim,).
            min_score: cosine below which an event is not a match.
            limit: most matches returned.
            center: float array of shape (dim,) subtracted from the query and every
                stored embedding before the cosine; None compares them as stored.

        Returns:
            Up to ``limit`` matches with score >= ``min_score``. Rows embedded with
            another dimension (an older model) are skipped.
        """
        check_sender(sender_id)
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT id, sender_id, route, text, created_at, embedding FROM events "
                "WHERE sender_id = ? AND dim = ? ORDER BY id DESC LIMIT ?",
                (sender_id, int(q.size), MAX_SCAN_ROWS),
            ).fetchall()
        if not rows:
            return []
        matrix = np.stack([np.frombuffer(row[5], dtype=np.float32) for row in rows])  # (n, dim)
        if center is not None:
            shift = np.asarray(center, dtype=np.float32).reshape(-1)
            matrix, q = matrix - shift, q - shift
        norms = np.linalg.norm(matrix, axis=1) * max(float(np.linalg.norm(q)), 1e-12)
        scores = matrix @ q / np.maximum(norms, 1e-12)
        # Stable sort on negated scores: ties go to the newest event (rows are newest first).
        order = np.argsort(-scores, kind="stable")[:limit]
        return [Match(Event(*rows[i][:5]), float(scores[i])) for i in order if scores[i] >= min_score]


def check_sender(sender_id: str) -> None:
    """Reject a missing sender id: memory must always belong to someone."""
    if not isinstance(sender_id, str) or not sender_id.strip():
        raise ValueError(f"sender_id={sender_id!r} is invalid; every event needs the conversation's sender id.")
