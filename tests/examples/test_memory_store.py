"""The memory store on both backends: per-user isolation, parameterized SQL, persistence, odd texts,
idempotent adds, schema creation and migration.

Every test taking ``backend`` runs on SQLite and on PostgreSQL (a real server started by the session
fixture ``local_postgres``; those runs are slow-marked). Backend-specific damage (a deleted file, a killed
connection) is tested per backend below.
"""
import sqlite3
import threading
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from examples.memory_bot.actions.memory import (
    MAX_EVENT_CHARS,
    PG_TABLE,
    SCHEMA_VERSION,
    MemoryBackend,
    MemoryStore,
    PostgresMemoryStore,
    SQLiteMemoryStore,
    open_store,
    redact,
)

INJECTION = "'); DROP TABLE events;--"


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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def backend(request, tmp_path) -> Backend:
    if request.param == "sqlite":
        return sqlite_backend(tmp_path)
    return postgres_backend(request.getfixturevalue("local_postgres"))


@pytest.fixture
def store(backend):
    opened = backend.open()
    yield opened
    opened.close()


def test_open_store_picks_the_backend(backend, store):
    assert store.backend == backend.name
    assert isinstance(store, SQLiteMemoryStore if backend.name == "sqlite" else PostgresMemoryStore)
    assert MemoryStore is SQLiteMemoryStore  # the default under its original name
    password = urllib.parse.urlsplit(backend.location).password
    if password:  # PostgreSQL: the password never shows in logs
        assert password not in repr(store) and "***" in repr(store)


def test_search_returns_only_the_senders_events_best_first(store):
    store.add("alice", "action", "locker code 4411", unit(1, 0, 0))
    store.add("alice", "action", "table for two", unit(0, 1, 0))
    store.add("bruno", "action", "bruno's locker 9999", unit(1, 0, 0))

    matches = store.search("alice", unit(1, 0.1, 0), limit=2)
    assert [m.event.text for m in matches] == ["locker code 4411", "table for two"]
    assert matches[0].score == pytest.approx(float(unit(1, 0.1, 0)[0]), abs=1e-6)
    assert all(m.event.sender_id == "alice" for m in matches)
    assert [e.text for e in store.events("bruno")] == ["bruno's locker 9999"]
    assert store.search("carol", unit(1, 0, 0)) == []


def test_min_score_filters_and_other_dimensions_are_skipped(store):
    store.add("alice", "action", "x axis", unit(1, 0, 0))
    store.add("alice", "action", "old model", unit(1, 0, 0, 0))
    assert store.search("alice", unit(0, 1, 0), min_score=0.5) == []
    matches = store.search("alice", unit(1, 0, 0), limit=5)
    assert [m.event.text for m in matches] == ["x axis"]


def test_sql_metacharacters_are_stored_verbatim_and_break_nothing(store):
    store.add("alice", "action", "keep me", unit(1, 0))
    event = store.add(INJECTION, "action", INJECTION, unit(0, 1))
    store.add("alice", "action", f"note {INJECTION}", unit(0, 1))
    store.add("alice", "action", "100% sure %s %(x)s", unit(0, 1))  # psycopg2's placeholders, as text

    assert store.count() == 4
    assert store.events(INJECTION) == [event]
    assert store.events(INJECTION)[0].text == INJECTION
    assert [e.text for e in store.events("alice")] == ["keep me", f"note {INJECTION}", "100% sure %s %(x)s"]
    # A LIKE-style wildcard or quote in the sender id must not widen the search.
    assert store.search("%", unit(1, 0)) == []
    assert store.search("alice' OR '1'='1", unit(1, 0)) == []


def test_events_survive_reopening_the_store(backend):
    first = backend.open()
    first.add("alice", "action", "remember that my locker code is 4411", unit(1, 2, 3))
    first.close()

    reopened = backend.open()
    matches = reopened.search("alice", unit(1, 2, 3))
    assert [m.event.text for m in matches] == ["remember that my locker code is 4411"]
    assert matches[0].score == pytest.approx(1.0, abs=1e-6)
    [(dim, size)] = backend.sql(f"SELECT dim, length(embedding) FROM {backend.table}")  # float32 bytes
    assert dim == 3 and size == 3 * 4
    reopened.close()


def test_huge_and_empty_texts(store):
    huge = "a" * (1024 * 1024)
    event = store.add("alice", "action", huge, unit(1, 0))
    assert len(event.text) == MAX_EVENT_CHARS
    assert store.events("alice")[0].text == "a" * MAX_EVENT_CHARS
    assert store.add("alice", "action", "", unit(0, 1)).text == ""
    # NUL characters are dropped (PostgreSQL text cannot hold them) on both backends alike.
    assert store.add("alice", "action", "emoji 🙂 and 中文\x00 and NUL", unit(0, 1)).text == "emoji 🙂 and 中文 and NUL"
    assert store.events("alice")[-1].text == "emoji 🙂 and 中文 and NUL"
    assert store.count() == 3


@pytest.mark.parametrize("sender", ["", "   ", None, "ali\x00ce"])
def test_missing_sender_is_rejected_with_the_value(store, sender):
    with pytest.raises(ValueError, match="sender_id"):
        store.add(sender, "action", "text", unit(1, 0))
    with pytest.raises(ValueError, match="sender_id"):
        store.search(sender, unit(1, 0))
    assert store.count() == 0


def test_bad_embedding_is_rejected(store):
    with pytest.raises(ValueError, match="embedding"):
        store.add("alice", "action", "text", np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match="embedding"):
        store.add("alice", "action", "text", np.array([]))
    assert store.count() == 0


def test_center_is_subtracted_before_the_cosine(store):
    # Both events point along the shared component (1, 0, 0); only centering tells them apart.
    store.add("alice", "action", "first", np.array([1.0, 0.1, 0.0], np.float32))
    store.add("alice", "action", "second", np.array([1.0, 0.0, 0.1], np.float32))
    query = np.array([1.0, 0.0, 0.05], np.float32)
    raw = store.search("alice", query, limit=2)
    assert min(m.score for m in raw) > 0.99
    centered = store.search("alice", query, limit=2, center=np.array([1.0, 0.0, 0.0]))
    assert [m.event.text for m in centered] == ["second", "first"]
    assert centered[0].score == pytest.approx(1.0, abs=1e-6) and centered[1].score == pytest.approx(0.0, abs=1e-6)


def test_a_message_id_is_stored_once_per_sender(store):
    first = store.add("alice", "action", "remember that my locker code is 4411", unit(1, 0), message_id="m-1")
    again = store.add("alice", "action", "remember that my locker code is 4411", unit(1, 0), message_id="m-1")
    assert again == first
    # The same id from another user is another message; no id always stores.
    store.add("bruno", "action", "bruno's fact", unit(1, 0), message_id="m-1")
    store.add("alice", "action", "no id", unit(0, 1))
    store.add("alice", "action", "no id", unit(0, 1), message_id="")
    assert [e.text for e in store.events("alice")] == ["remember that my locker code is 4411", "no id", "no id"]
    assert store.count() == 4


def test_concurrent_adds_of_many_users_keep_each_users_order(backend):
    # Several stores on one location, as several action servers (and their threads) share one memory.
    stores = [backend.open() for _ in range(3)]
    users, per_user = 8, 12
    errors = []

    def user(u):
        try:
            for k in range(per_user):
                stores[(u + k) % len(stores)].add(f"user-{u}", "action", f"fact {u}-{k}", unit(1, u + 1, k + 1),
                                                  message_id=f"msg-{u}-{k}")
                stores[k % len(stores)].add(f"user-{u}", "action", f"fact {u}-{k}", unit(1, u + 1, k + 1),
                                            message_id=f"msg-{u}-{k}")  # a retried call: stored once
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=user, args=(u,)) for u in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for u in range(users):
        assert [e.text for e in stores[0].events(f"user-{u}")] == [f"fact {u}-{k}" for k in range(per_user)]
        assert {m.event.sender_id for m in stores[1].search(f"user-{u}", unit(1, 0, 0), limit=50)} == {f"user-{u}"}
    assert stores[2].count() == users * per_user
    for s in stores:
        s.close()


def test_a_version_1_schema_is_migrated_and_keeps_its_events(backend):
    blob = "X'0000803F'" if backend.name == "sqlite" else "'\\x0000803f'::bytea"  # float32 1.0
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if backend.name == "sqlite" else "BIGSERIAL PRIMARY KEY"
    real = "REAL" if backend.name == "sqlite" else "DOUBLE PRECISION"
    backend.sql(f"CREATE TABLE {backend.table} (id {serial}, sender_id TEXT NOT NULL, route TEXT NOT NULL, "
                f"text TEXT NOT NULL, created_at {real} NOT NULL, dim INTEGER NOT NULL, embedding "
                f"{'BLOB' if backend.name == 'sqlite' else 'BYTEA'} NOT NULL)")
    backend.sql(f"INSERT INTO {backend.table} (sender_id, route, text, created_at, dim, embedding) "
                f"VALUES ('alice', 'action', 'from version 1', 1.0, 1, {blob})")

    store = backend.open()
    assert [e.text for e in store.events("alice")] == ["from version 1"]
    assert store.search("alice", np.ones(1))[0].score == pytest.approx(1.0)
    store.add("alice", "action", "version 2", np.ones(1), message_id="m")
    store.add("alice", "action", "version 2", np.ones(1), message_id="m")
    assert [e.text for e in store.events("alice")] == ["from version 1", "version 2"]
    if backend.name == "sqlite":
        assert backend.sql("PRAGMA user_version") == [(SCHEMA_VERSION,)]
    else:
        assert store.schema_version() == SCHEMA_VERSION
    store.close()


def test_a_dropped_table_is_recreated_by_the_next_call(backend, store):
    store.add("alice", "action", "before", unit(1, 0))
    backend.sql(f"DROP TABLE {backend.table}")
    assert store.search("alice", unit(1, 0)) == []  # no "no such table"
    store.add("alice", "action", "after", unit(1, 0), message_id="m")
    assert [e.text for e in store.events("alice")] == ["after"]
    store.check()


# ------------------------------------------------------------------------------------------ SQLite only

@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_a_deleted_or_emptied_file_is_repaired_by_the_next_call(tmp_path, damage):
    path = tmp_path / "memory.db"
    store = MemoryStore(path)  # a long-lived object, as the action server caches it
    store.add("alice", "action", "before", unit(1, 0))
    if damage == "delete":
        path.unlink()
    else:
        path.write_bytes(b"")
    assert store.search("alice", unit(1, 0)) == []  # no "no such table"
    store.add("alice", "action", "after", unit(1, 0))
    assert [e.text for e in store.events("alice")] == ["after"]
    store.check()


def test_check_fails_on_a_corrupt_file(tmp_path):
    path = tmp_path / "memory.db"
    store = MemoryStore(path)
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        store.check()


def test_open_store_refuses_other_urls():
    with pytest.raises(ValueError, match="postgresql://") as e:
        open_store("mysql://root:hunter2@db/memory")
    assert "hunter2" not in str(e.value)
    assert redact("postgresql://u:hunter2@db:5432/memory") == "postgresql://u:***@db:5432/memory"
    assert redact("/tmp/memory.db") == "/tmp/memory.db"


# -------------------------------------------------------------------------------------- PostgreSQL only

@pytest.mark.slow
def test_postgres_recovers_from_killed_connections(local_postgres):
    url = local_postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")
    store = open_store(url)
    store.add("alice", "action", "before", unit(1, 0), message_id="a")
    admin = local_postgres.admin()
    try:
        with admin.cursor() as cursor:  # what a PostgreSQL restart or failover does to pooled connections
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE usename = %s AND pid <> pg_backend_pid()", (local_postgres.user,))
    finally:
        admin.close()
    assert [e.text for e in store.events("alice")] == ["before"]  # a read retries on a fresh connection
    store.add("alice", "action", "after", unit(1, 0), message_id="b")
    assert store.count() == 2
    store.check()
    store.close()


@pytest.mark.slow
def test_postgres_wrong_password_fails_without_showing_it(local_postgres):
    import psycopg2

    url = local_postgres.url("memory").replace(local_postgres.password, "not-the-password")
    with pytest.raises(psycopg2.OperationalError) as e:
        open_store(url)
    assert "not-the-password" not in str(e.value)
