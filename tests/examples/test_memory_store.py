"""The memory store on both backends: per-user isolation, parameterized SQL, persistence, odd texts,
validation, idempotent adds and concurrent writers.

Every test taking ``backend`` or ``store`` (fixtures in conftest.py) runs on SQLite and on PostgreSQL (a
real server started by the session fixture ``local_postgres``; those runs are slow-marked). Schema
migration and damage are in test_memory_store_recovery.py.
"""
import threading
import urllib.parse

import numpy as np
import pytest

from examples.memory_bot.actions.memory import (
    MAX_EVENT_CHARS,
    MemoryStore,
    PostgresMemoryStore,
    SQLiteMemoryStore,
    open_store,
    redact,
)
from memory_backends import unit

INJECTION = "'); DROP TABLE events;--"


def test_open_store_picks_the_backend(backend, store):
    assert store.backend == backend.name
    assert isinstance(store, SQLiteMemoryStore if backend.name == "sqlite" else PostgresMemoryStore)
    assert MemoryStore is SQLiteMemoryStore  # the default under its original name
    password = urllib.parse.urlsplit(backend.location).password
    if password:  # PostgreSQL: the password never shows in logs
        assert password not in repr(store) and "***" in repr(store)


def test_open_store_refuses_other_urls():
    with pytest.raises(ValueError, match="postgresql://") as e:
        open_store("mysql://root:hunter2@db/memory")
    assert "hunter2" not in str(e.value)
    assert redact("postgresql://u:hunter2@db:5432/memory") == "postgresql://u:***@db:5432/memory"
    assert redact("/tmp/memory.db") == "/tmp/memory.db"


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
