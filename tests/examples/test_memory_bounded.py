"""Bounded memory on both backends: each add keeps only the user's newest ``max_rows`` rows, the ones a
search can still reach (``MAX_SCAN_ROWS`` by default), and leaves other users alone.

``backend`` (conftest.py) runs each test on SQLite and, slow-marked, on a real PostgreSQL server.
"""
import threading

import numpy as np
import pytest

from examples.memory_bot.actions.memory import (
    MAX_SCAN_ROWS,
    PostgresMemoryStore,
    SQLiteMemoryStore,
    open_store,
)
from examples.memory_bot.actions.memory_backend import PRUNE_SQL
from memory_backends import unit


def one_hot(k: int, dim: int = 8) -> np.ndarray:
    return np.eye(dim, dtype=np.float32)[k]


def stored(backend, sender: str):
    """(id, text) of the sender's rows read with raw SQL beside the store, oldest first."""
    return backend.sql(f"SELECT id, text FROM {backend.table} WHERE sender_id = '{sender}' ORDER BY id")


@pytest.fixture
def small(backend):
    """The store at ``backend`` keeping 3 rows per user."""
    opened = open_store(backend.location, max_rows=3)
    yield opened
    opened.close()


def test_an_add_keeps_only_the_users_newest_rows(backend, small):
    assert small.max_rows == 3
    bob = [small.add("bob", "action", f"bob fact {k}", one_hot(k)) for k in range(2)]
    alice = []
    for k in range(5):
        alice.append(small.add("alice", "action", f"alice fact {k}", one_hot(k)))
        assert len(stored(backend, "alice")) == min(k + 1, 3)
        if k == 2:  # bob reaches the limit too, between alice's adds
            bob.append(small.add("bob", "action", "bob fact 2", one_hot(2)))

    # Exactly alice's 3 newest remain; the 2 oldest are gone from the table, not just hidden.
    assert stored(backend, "alice") == [(e.id, e.text) for e in alice[2:]]
    assert small.events("alice") == alice[2:]
    assert backend.sql(f"SELECT COUNT(*) FROM {backend.table} WHERE text IN ('alice fact 0', 'alice fact 1')") == [(0,)]
    # Search finds neither of the deleted facts, and still the right newest match.
    assert small.search("alice", one_hot(0), min_score=0.5) == []
    assert small.search("alice", one_hot(1), min_score=0.5) == []
    [match] = small.search("alice", one_hot(4))
    assert match.event == alice[4] and match.score == pytest.approx(1.0, abs=1e-6)
    assert [m.event.text for m in small.search("alice", one_hot(2) + one_hot(3) + one_hot(4), limit=10)] == [
        "alice fact 4", "alice fact 3", "alice fact 2"]  # ties go to the newest
    # Bob's rows (at the limit, never over it) are untouched by alice's adds.
    assert stored(backend, "bob") == [(e.id, e.text) for e in bob]
    assert small.count() == 6


def test_a_repeated_message_id_deletes_nothing(backend, small):
    first = [small.add("alice", "action", f"fact {k}", one_hot(k), message_id=f"m-{k}") for k in range(3)]
    assert small.add("alice", "action", "fact 0", one_hot(0), message_id="m-0") == first[0]  # nothing inserted
    assert small.events("alice") == first
    small.add("alice", "action", "fact 3", one_hot(3), message_id="m-3")
    assert [text for _, text in stored(backend, "alice")] == ["fact 1", "fact 2", "fact 3"]


def test_a_smaller_limit_trims_existing_rows_on_the_next_add(backend):
    big = open_store(backend.location)  # the default keeps MAX_SCAN_ROWS
    assert big.max_rows == MAX_SCAN_ROWS
    events = [big.add("alice", "action", f"fact {k}", one_hot(k)) for k in range(6)]
    big.add("bob", "action", "bob fact", one_hot(0))
    big.close()

    small = open_store(backend.location, max_rows=2)
    # Search scans the store's max_rows newest rows: the same bound as storage.
    assert [m.event for m in small.search("alice", np.ones(8, np.float32), limit=10)] == events[:3:-1]
    newest = small.add("alice", "action", "fact 6", one_hot(6))  # deletes 5 rows in one statement
    assert small.events("alice") == [events[5], newest]
    assert [text for _, text in stored(backend, "bob")] == ["bob fact"]
    assert small.count() == 3
    small.close()


def test_concurrent_adds_of_one_user_stay_bounded(backend):
    # Several stores (action servers) adding for one user at once, then one more add settles it.
    stores = [open_store(backend.location, max_rows=3) for _ in range(4)]
    errors = []

    def adds(s):
        try:
            for k in range(5):
                stores[s].add("alice", "action", f"fact {s}-{k}", unit(1, s + 1, k + 1))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=adds, args=(s,)) for s in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert 3 <= len(stored(backend, "alice")) <= 3 + len(stores) - 1
    last = stores[0].add("alice", "action", "last", unit(1, 0, 0))
    rows = stored(backend, "alice")
    assert len(rows) == 3 and rows[-1] == (last.id, "last")
    assert [row[0] for row in rows] == [row[0] for row in backend.sql(
        f"SELECT id FROM {backend.table} WHERE sender_id = 'alice' ORDER BY id DESC LIMIT 3")][::-1]
    for s in stores:
        s.close()


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "3", None])
def test_max_rows_must_be_a_positive_int(tmp_path, bad):
    with pytest.raises(ValueError, match="max_rows"):
        SQLiteMemoryStore(tmp_path / "memory.db", max_rows=bad)
    with pytest.raises(ValueError, match="max_rows"):  # checked before any connection is made
        PostgresMemoryStore("postgresql://nobody@127.0.0.1:1/none", max_rows=bad)


def test_sqlite_prune_walks_the_sender_id_index(tmp_path):
    store = SQLiteMemoryStore(tmp_path / "memory.db", max_rows=3)
    import sqlite3

    with sqlite3.connect(store.path) as db:
        plan = " | ".join(row[-1] for row in db.execute(
            "EXPLAIN QUERY PLAN " + PRUNE_SQL.format(table="events", mark="?"), ("alice", "alice", 3)))
    assert "events_by_sender_id" in plan and "TEMP B-TREE" not in plan, plan
