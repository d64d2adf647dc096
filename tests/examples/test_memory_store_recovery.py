"""The memory store recovers: an older schema is migrated, a dropped table or a deleted, emptied or corrupt
SQLite file is repaired or reported, and PostgreSQL survives killed connections and hides a wrong password.

Tests taking ``backend`` or ``store`` (fixtures in conftest.py) run on SQLite and on PostgreSQL (slow).
"""
import sqlite3
import uuid

import numpy as np
import pytest

from examples.memory_bot.actions.memory import SCHEMA_VERSION, MemoryStore, open_store
from memory_backends import unit


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
