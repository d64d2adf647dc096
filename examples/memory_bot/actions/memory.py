"""A per-user event memory searched by meaning with embedding cosine: SQLite or PostgreSQL.

``open_store(location)`` picks the backend: a ``postgresql://`` (or ``postgres://``) URL opens a
``PostgresMemoryStore`` (a connection pool, for several action servers sharing one memory); anything
else is a SQLite file path (``SQLiteMemoryStore``, also importable as ``MemoryStore``, the default).

Both backends implement ``MemoryBackend``: every query is parameterized; rows are keyed by the
conversation's sender id so one user never reads another user's events; search is exact (every
stored embedding of the user is compared, see ``MemoryBackend.search``); each store creates its
schema and migrates an older one (``SCHEMA_VERSION``). pgvector is not used: the per-user scan is
exact and bounded by ``MAX_SCAN_ROWS``.
"""
import abc
import logging
import sqlite3
import threading
import time
import urllib.parse
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

logger = logging.getLogger(__name__)

# Longer texts are cut before storing: an event is one utterance, and this keeps
# one pasted document from bloating the database.
MAX_EVENT_CHARS = 2000
# Rows scanned per search: the newest ones; enough for a personal assistant.
MAX_SCAN_ROWS = 5000
# Version 1: events. Version 2: events.message_id, unique per sender, so that the same Rasa
# message (its message_id) is stored once even when its action runs twice.
SCHEMA_VERSION = 2
POSTGRES_SCHEMES = ("postgresql", "postgres")
# PostgreSQL connections per action server process (rasa_sdk runs actions one at a time per
# process; the pool also serves /health and any thread the SDK uses).
DEFAULT_POOL_MAX = 4
CONNECT_TIMEOUT_S = 10

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
            another dimension (an older model) are skipped; the newest ``MAX_SCAN_ROWS`` are scanned.
        """
        check_sender(sender_id)
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        return rank(self._scan(sender_id, int(q.size), MAX_SCAN_ROWS), q, min_score, limit, center)

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
        """Insert (sender_id, route, text, created_at, dim, embedding bytes, message_id)."""

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


# --------------------------------------------------------------------------------------------- SQLite

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
    "CREATE UNIQUE INDEX IF NOT EXISTS events_by_message ON events (sender_id, message_id) "
    "WHERE message_id IS NOT NULL",
)
INSERT_SQL = ("INSERT INTO {table} (sender_id, route, text, created_at, dim, embedding, message_id) "
              "VALUES ({marks}) ON CONFLICT DO NOTHING")


class SQLiteMemoryStore(MemoryBackend):
    """Events of many users in one SQLite file; each call opens its own connection.

    A connection per call keeps the store safe to use from the action server's
    threads and lets the file be replaced or inspected between calls. Every
    connection (re)creates the schema when it is missing and migrates a version-1
    file (no message_id column), so a database file that was deleted, emptied or
    truncated to zero bytes while the server runs is repaired by the next call
    instead of failing with "no such table".
    """

    backend = "sqlite"

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path)
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
                return Event(int(cursor.lastrowid), *row[:4])
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


#: The SQLite store under its original name (the default backend).
MemoryStore = SQLiteMemoryStore


# ----------------------------------------------------------------------------------------- PostgreSQL

PG_TABLE = "memory_events"  # not "events": Rasa's SQL tracker store owns that name
PG_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS memory_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
    f"""CREATE TABLE IF NOT EXISTS {PG_TABLE} (
        id BIGSERIAL PRIMARY KEY,
        sender_id TEXT NOT NULL,
        route TEXT NOT NULL,
        text TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        dim INTEGER NOT NULL,
        embedding BYTEA NOT NULL
    )""",
    # Version 2.
    f"ALTER TABLE {PG_TABLE} ADD COLUMN IF NOT EXISTS message_id TEXT",
    f"CREATE INDEX IF NOT EXISTS {PG_TABLE}_by_sender ON {PG_TABLE} (sender_id, id)",
    f"CREATE UNIQUE INDEX IF NOT EXISTS {PG_TABLE}_by_message ON {PG_TABLE} (sender_id, message_id) "
    "WHERE message_id IS NOT NULL",
    "INSERT INTO memory_schema (id, version) VALUES (1, %(version)s) "
    "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version",
)
# Serializes schema changes of action servers that start together (any constant key works).
PG_MIGRATION_LOCK = 0x6D656D6F


class PostgresMemoryStore(MemoryBackend):
    """Events of many users in one PostgreSQL table, through a thread-safe connection pool.

    Several action servers share it. The schema is created (and a version-1 table migrated) when the
    store opens, under an advisory lock; a table dropped while the server runs is recreated by the next
    call. A connection that broke (server restart) is discarded and the call retried once when that is
    safe: reads, and adds that carry a message_id.

    Args:
        url: ``postgresql://user[:password]@host:port/dbname[?options]``; libpq's environment
            (``PGPASSWORD``, ``PGSSLMODE``, …) fills in what the URL leaves out.
        pool_max: most connections this process opens.
    """

    backend = "postgresql"

    def __init__(self, url: str, pool_max: int = DEFAULT_POOL_MAX, pool_min: int = 1) -> None:
        import psycopg2.pool

        self.url = url
        self._slots = threading.BoundedSemaphore(pool_max)  # wait for a connection instead of PoolError
        self._pool = psycopg2.pool.ThreadedConnectionPool(pool_min, pool_max, dsn=url,
                                                          connect_timeout=CONNECT_TIMEOUT_S)
        try:
            self.migrate()
        except BaseException:
            self._pool.closeall()
            raise

    def __repr__(self) -> str:
        return f"PostgresMemoryStore({redact(self.url)!r})"

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        """A pooled connection inside a transaction (committed on success); a broken one is discarded."""
        import psycopg2

        with self._slots:
            conn = self._pool.getconn()
            broken = bool(conn.closed)
            try:
                if broken:
                    raise psycopg2.InterfaceError("pooled connection was closed")
                with conn:  # commit, or roll back on an exception
                    yield conn
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                broken = True
                raise
            finally:
                self._pool.putconn(conn, close=broken or bool(conn.closed))

    def _run(self, work, idempotent: bool = True):
        """``work(cursor)`` in a transaction; recreates a dropped table, retries a broken connection once."""
        import psycopg2
        import psycopg2.errors

        for attempt in (1, 2):
            try:
                with self._connection() as conn, conn.cursor() as cursor:
                    return work(cursor)
            except psycopg2.errors.UndefinedTable:
                if attempt == 2:
                    raise
                logger.warning("Memory store: table %s is missing; recreating it.", PG_TABLE)
                self.migrate()
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                if attempt == 2 or not idempotent:
                    raise
                logger.warning("Memory store: a PostgreSQL connection broke; retrying with a new one.")

    def migrate(self) -> None:
        """Create the schema or bring it to SCHEMA_VERSION (idempotent; one process at a time)."""
        with self._connection() as conn, conn.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (PG_MIGRATION_LOCK,))
            for statement in PG_SCHEMA:
                cursor.execute(statement, {"version": SCHEMA_VERSION})

    def schema_version(self) -> int:
        """The version recorded in the database's memory_schema table."""
        def version(cursor):
            cursor.execute("SELECT version FROM memory_schema WHERE id = 1")
            return int(cursor.fetchone()[0])

        return self._run(version)

    def check(self) -> None:
        def probe(cursor):
            cursor.execute(f"SELECT COUNT(*) FROM {PG_TABLE} WHERE id = %s", (-1,))
            cursor.execute("SELECT has_table_privilege(%s, 'INSERT')", (PG_TABLE,))
            if not cursor.fetchone()[0]:
                raise PermissionError(f"this role may not insert into {PG_TABLE}")
            cursor.execute("SELECT pg_is_in_recovery()")
            if cursor.fetchone()[0]:
                raise PermissionError("the server is a read-only standby")

        self._run(probe)

    def _insert(self, row: tuple) -> Event:
        def insert(cursor):
            cursor.execute(INSERT_SQL.format(table=PG_TABLE, marks=", ".join(["%s"] * 7)) + " RETURNING id",
                           row[:5] + (psycopg_binary(row[5]), row[6]))
            inserted = cursor.fetchone()
            if inserted is not None:
                return Event(int(inserted[0]), *row[:4])
            cursor.execute(f"SELECT id, sender_id, route, text, created_at FROM {PG_TABLE} "
                           "WHERE sender_id = %s AND message_id = %s", (row[0], row[6]))
            return Event(*cursor.fetchone())

        return self._run(insert, idempotent=row[6] is not None)

    def _select_events(self, sender_id: str) -> List[tuple]:
        def select(cursor):
            cursor.execute(f"SELECT id, sender_id, route, text, created_at FROM {PG_TABLE} "
                           "WHERE sender_id = %s ORDER BY id", (sender_id,))
            return cursor.fetchall()

        return self._run(select)

    def count(self) -> int:
        def count(cursor):
            cursor.execute(f"SELECT COUNT(*) FROM {PG_TABLE}")
            return int(cursor.fetchone()[0])

        return self._run(count)

    def _scan(self, sender_id: str, dim: int, limit: int) -> List[Row]:
        def scan(cursor):
            cursor.execute(f"SELECT id, sender_id, route, text, created_at, embedding FROM {PG_TABLE} "
                           "WHERE sender_id = %s AND dim = %s ORDER BY id DESC LIMIT %s", (sender_id, dim, limit))
            return cursor.fetchall()

        return self._run(scan)

    def close(self) -> None:
        self._pool.closeall()


def psycopg_binary(data: bytes):
    import psycopg2

    return psycopg2.Binary(data)


# --------------------------------------------------------------------------------------------- choice

def is_postgres_url(location: Union[str, Path]) -> bool:
    return isinstance(location, str) and urllib.parse.urlsplit(location).scheme.lower() in POSTGRES_SCHEMES


def open_store(location: Union[str, Path], pool_max: int = DEFAULT_POOL_MAX) -> MemoryBackend:
    """The store at ``location``: a ``postgresql://`` URL, else a SQLite file path."""
    if is_postgres_url(location):
        return PostgresMemoryStore(str(location), pool_max=pool_max)
    if isinstance(location, str) and "://" in location:
        raise ValueError(f"memory store {redact(location)!r}: only postgresql:// URLs or SQLite file paths work.")
    return SQLiteMemoryStore(location)


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
