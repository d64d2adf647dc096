"""The memory interface both backends implement (``MemoryBackend``) and what they share: events,
validation, the exact cosine ranking and the insert statement.

Rows are keyed by the conversation's sender id so one user never reads another user's events; every
query is parameterized; search is exact (every stored embedding of the user is compared), bounded by
``MAX_SCAN_ROWS``, and each add deletes the user's rows beyond that many (the store's ``max_rows``).
"""
import abc
import operator
import time
import urllib.parse
from pathlib import Path
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

# Longer texts are cut before storing: an event is one utterance, and this keeps
# one pasted document from bloating the database.
MAX_EVENT_CHARS = 2000
# Rows scanned per search: the newest ones; enough for a personal assistant. It is also how many rows
# a user keeps (a store's max_rows defaults to it): search never reads older ones, so storing them would
# only grow the database without bound.
MAX_SCAN_ROWS = 5000
# Version 1: events. Version 2: events.message_id, unique per sender, so that the same Rasa
# message (its message_id) is stored once even when its action runs twice.
SCHEMA_VERSION = 2

# (id, sender_id, route, text, created_at, embedding bytes) as both backends return them.
Row = Tuple[int, str, str, str, float, Any]


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


class MemoryBackend(abc.ABC):
    """What the actions need from a memory: add, list, count, search, check, close.

    Subclasses implement the SQL (``_insert``, ``_select_events``, ``_scan``, ``count``, ``check``);
    validation and the exact cosine search are shared, so both backends answer alike.
    """

    #: "sqlite" or "postgresql"
    backend = ""
    #: Rows a user keeps, and so rows a search scans (subclasses take it as ``max_rows``). One value for
    #: both: a row beyond the newest ``max_rows`` could never be found, so ``add`` deletes it.
    max_rows = MAX_SCAN_ROWS

    def add(self, sender_id: str, route: str, text: str, embedding: np.ndarray,
            created_at: Optional[float] = None, message_id: Optional[str] = None) -> Event:
        """Store one event (once per ``message_id``).

        Args:
            sender_id: the conversation's sender id (non-empty).
            route: the route the message took (``action``).
            text: the user's message without NUL characters, cut to ``MAX_EVENT_CHARS``.
            embedding: float array of shape (dim,), stored as float32 bytes.
            created_at: Unix time; now when None.
            message_id: Rasa's id of the message; a second add with the same sender and id stores
                nothing and returns the event stored first. None: always stored.

        An insert also deletes the user's rows older than their newest ``max_rows`` (same transaction).
        """
        check_sender(sender_id)
        vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
        if vector.size == 0 or not np.all(np.isfinite(vector)):
            raise ValueError(f"embedding of shape {np.shape(embedding)} is empty or not finite; pass a (dim,) vector.")
        if message_id is not None and (not isinstance(message_id, str) or not message_id.strip()):
            message_id = None
        # PostgreSQL text cannot hold NUL characters; both backends drop them, so both store the same text.
        text = text.replace("\x00", "")[:MAX_EVENT_CHARS]
        created_at = time.time() if created_at is None else float(created_at)
        row = (sender_id, route, text, created_at, int(vector.size), vector.tobytes(), message_id)
        return self._insert(row)

    def events(self, sender_id: str) -> List[Event]:
        """All events of one user, oldest first."""
        check_sender(sender_id)
        return [Event(*row) for row in self._select_events(sender_id)]

    def search(self, sender_id: str, query: np.ndarray, min_score: float = -1.0, limit: int = 1,
               center: Optional[np.ndarray] = None) -> List[Match]:
        """The user's events most similar to ``query``, best first (exact: every candidate is scored).

        Args:
            sender_id: whose events to search; nobody else's are read.
            query: float array of shape (dim,).
            min_score: cosine below which an event is not a match.
            limit: most matches returned.
            center: float array of shape (dim,) subtracted from the query and every
                stored embedding before the cosine; None compares them as stored.

        Returns:
            Up to ``limit`` matches with score >= ``min_score``. Rows embedded with
            another dimension (an older model) are skipped; the newest ``max_rows`` are scanned.
        """
        check_sender(sender_id)
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        return rank(self._scan(sender_id, int(q.size), self.max_rows), q, min_score, limit, center)

    @abc.abstractmethod
    def count(self) -> int:
        """Events of all users."""

    @abc.abstractmethod
    def check(self) -> None:
        """Raise when the store cannot be read and written (used by the readiness check)."""

    def close(self) -> None:
        """Release connections (the SQLite store holds none between calls)."""

    @abc.abstractmethod
    def _insert(self, row: tuple) -> Event:
        """Insert (sender_id, route, text, created_at, dim, embedding bytes, message_id); when a row was
        inserted, run ``PRUNE_SQL`` in the same transaction."""

    @abc.abstractmethod
    def _select_events(self, sender_id: str) -> List[tuple]:
        """(id, sender_id, route, text, created_at) of the user, oldest first."""

    @abc.abstractmethod
    def _scan(self, sender_id: str, dim: int, limit: int) -> List[Row]:
        """The user's newest ``limit`` rows of dimension ``dim``, newest first."""


def rank(rows: Sequence[Row], q: np.ndarray, min_score: float, limit: int,
         center: Optional[np.ndarray]) -> List[Match]:
    """Score rows (newest first) by cosine to ``q``; the best ``limit`` at or above ``min_score``."""
    if not rows:
        return []
    matrix = np.stack([np.frombuffer(bytes(row[5]), dtype=np.float32) for row in rows])  # (n, dim)
    if center is not None:
        shift = np.asarray(center, dtype=np.float32).reshape(-1)
        matrix, q = matrix - shift, q - shift
    norms = np.linalg.norm(matrix, axis=1) * max(float(np.linalg.norm(q)), 1e-12)
    scores = matrix @ q / np.maximum(norms, 1e-12)
    # Stable sort on negated scores: ties go to the newest event (rows are newest first).
    order = np.argsort(-scores, kind="stable")[:limit]
    return [Match(Event(*rows[i][:5]), float(scores[i])) for i in order if scores[i] >= min_score]


# Both backends' insert; a second row with the same (sender_id, message_id) inserts nothing.
INSERT_SQL = ("INSERT INTO {table} (sender_id, route, text, created_at, dim, embedding, message_id) "
              "VALUES ({marks}) ON CONFLICT DO NOTHING")
# Both backends' pruning after an insert, parameters (sender_id, sender_id, max_rows): deletes the sender's
# rows at or below their (max_rows + 1)-th newest id. The subquery walks at most max_rows + 1 entries of the
# (sender_id, id) index and is NULL while the sender has max_rows rows or fewer, so nothing is deleted then.
PRUNE_SQL = ("DELETE FROM {table} WHERE sender_id = {mark} AND id <= "
             "(SELECT id FROM {table} WHERE sender_id = {mark} ORDER BY id DESC LIMIT 1 OFFSET {mark})")


def check_max_rows(max_rows: int) -> int:
    """``max_rows`` as a positive int, else ValueError."""
    try:
        value = operator.index(max_rows)
    except TypeError:
        value = 0
    if isinstance(max_rows, bool) or value < 1:
        raise ValueError(f"max_rows={max_rows!r} is invalid; pass a positive int (default {MAX_SCAN_ROWS}).")
    return value


def redact(location: Union[str, Path]) -> str:
    """``location`` without a password, for logs and error messages."""
    text = str(location)
    parts = urllib.parse.urlsplit(text)
    if "://" not in text or parts.password is None:
        return text
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def check_sender(sender_id: str) -> None:
    """Reject a missing sender id: memory must always belong to someone."""
    if not isinstance(sender_id, str) or not sender_id.strip() or "\x00" in sender_id:
        raise ValueError(f"sender_id={sender_id!r} is invalid; every event needs the conversation's sender id.")
