"""MemoryStore: per-user isolation, parameterized SQL, persistence, odd texts."""
import sqlite3

import numpy as np
import pytest

from examples.memory_bot.actions.memory import MAX_EVENT_CHARS, MemoryStore

INJECTION = "'); DROP TABLE events;--"


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def store(tmp_path) -> MemoryStore:
    return MemoryStore(tmp_path / "memory.db")


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

    assert store.count() == 3
    assert store.events(INJECTION) == [event]
    assert store.events(INJECTION)[0].text == INJECTION
    assert [e.text for e in store.events("alice")] == ["keep me", f"note {INJECTION}"]
    # A LIKE-style wildcard or quote in the sender id must not widen the search.
    assert store.search("%", unit(1, 0)) == []
    assert store.search("alice' OR '1'='1", unit(1, 0)) == []


def test_events_survive_reopening_the_file(tmp_path):
    path = tmp_path / "sub" / "memory.db"
    first = MemoryStore(path)
    first.add("alice", "action", "remember that my locker code is 4411", unit(1, 2, 3))
    del first

    reopened = MemoryStore(path)
    matches = reopened.search("alice", unit(1, 2, 3))
    assert [m.event.text for m in matches] == ["remember that my locker code is 4411"]
    assert matches[0].score == pytest.approx(1.0, abs=1e-6)
    with sqlite3.connect(path) as db:  # the embedding is float32 bytes
        blob, dim = db.execute("SELECT embedding, dim FROM events").fetchone()
    assert dim == 3 and len(blob) == 3 * 4


def test_huge_and_empty_texts(store):
    huge = "a" * (1024 * 1024)
    event = store.add("alice", "action", huge, unit(1, 0))
    assert len(event.text) == MAX_EVENT_CHARS
    assert store.events("alice")[0].text == "a" * MAX_EVENT_CHARS
    assert store.add("alice", "action", "", unit(0, 1)).text == ""
    assert store.count() == 2


@pytest.mark.parametrize("sender", ["", "   ", None])
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
