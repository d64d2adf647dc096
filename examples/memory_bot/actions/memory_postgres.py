"""``PostgresMemoryStore``: the memory in one PostgreSQL table, shared by several action servers."""
import logging
import threading
from contextlib import contextmanager
from typing import Any, Iterator, List

from .memory_backend import (INSERT_SQL, MAX_SCAN_ROWS, PRUNE_SQL, SCHEMA_VERSION, Event, MemoryBackend, Row,
                             check_max_rows, redact)

logger = logging.getLogger(__name__)

# PostgreSQL connections per action server process (rasa_sdk runs actions one at a time per
# process; the pool also serves /health and any thread the SDK uses).
DEFAULT_POOL_MAX = 4
CONNECT_TIMEOUT_S = 10

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
        max_rows: rows each user keeps, newest first; also rows a search scans (see ``MemoryBackend``).
            Adds of one user committing at the same moment do not see each other's new rows, so each
            of them but one may leave a row over it; that user's next add deletes them.
    """

    backend = "postgresql"

    def __init__(self, url: str, pool_max: int = DEFAULT_POOL_MAX, pool_min: int = 1,
                 max_rows: int = MAX_SCAN_ROWS) -> None:
        import psycopg2.pool

        self.url = url
        self.max_rows = check_max_rows(max_rows)
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
                cursor.execute(PRUNE_SQL.format(table=PG_TABLE, mark="%s"), (row[0], row[0], self.max_rows))
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
