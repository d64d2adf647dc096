"""memory_bot's actions, run with rasa_sdk's Tracker and CollectingDispatcher and a real student."""
from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from examples.memory_bot.actions import actions
from examples.memory_bot.actions.memory import MAX_EVENT_CHARS, MemoryStore

INJECTION = "'); DROP TABLE events;--"


def tracker(sender: Optional[str], text: Optional[str], route: str = "action",
            latest: Optional[Dict[str, Any]] = None) -> Tracker:
    message = latest if latest is not None else {"text": text, "intent": {"name": route, "confidence": 0.9}}
    return Tracker(sender, {}, message, [], False, None, {}, None)


def run(action, sender: Optional[str], text: Optional[str], **kw) -> List[str]:
    dispatcher = CollectingDispatcher()
    events = action.run(dispatcher, tracker(sender, text, **kw), {})
    assert events == []
    return [m["text"] for m in dispatcher.messages]


def store_msg(sender, text, **kw) -> List[str]:
    return run(actions.ActionMemoryStore(), sender, text, route="action", **kw)


def lookup(sender, text, **kw) -> List[str]:
    return run(actions.ActionMemoryLookup(), sender, text, route="recall", **kw)


def test_store_then_recall_by_meaning_per_user(memory_env):
    assert "4411" in store_msg("alice", "remember that my locker code is 4411")[0]
    store_msg("alice", "book a table for two at 7 pm tomorrow")
    store_msg("bruno", "set an alarm for 6 am")

    [answer] = lookup("alice", "¿cuál es el código de mi taquilla?")
    assert "4411" in answer
    [other_user] = lookup("bruno", "¿cuál es el código de mi taquilla?")
    assert "4411" not in other_user
    assert lookup("carol", "what is my locker code?") == [actions.NOTHING_FOUND]
    events = MemoryStore(memory_env).events("alice")
    assert [(e.route, e.text) for e in events] == [
        ("action", "remember that my locker code is 4411"),
        ("action", "book a table for two at 7 pm tomorrow"),
    ]


@pytest.mark.parametrize("text", [None, "", "   \n"])
def test_missing_text_gets_a_reply_and_stores_nothing(memory_env, text):
    store_msg("alice", "keep this one")
    assert store_msg("alice", text) == [actions.NO_TEXT]
    assert lookup("alice", text) == [actions.NO_QUERY]
    assert [e.text for e in MemoryStore(memory_env).events("alice")] == ["keep this one"]


def test_no_latest_message_gets_a_reply(memory_env):
    assert run(actions.ActionMemoryStore(), "alice", None, latest={}) == [actions.NO_TEXT]


@pytest.mark.parametrize("sender", [None, "", "  "])
def test_unknown_sender_gets_a_reply_and_touches_no_memory(memory_env, sender):
    store_msg("alice", "keep this one")
    assert store_msg(sender, "remember that my pin is 1234") == [actions.NO_SENDER]
    assert lookup(sender, "what is my pin?") == [actions.NO_SENDER]
    assert MemoryStore(memory_env).count() == 1


def test_huge_text_is_cut_and_keeps_older_events(memory_env):
    store_msg("alice", "remember that my locker code is 4411")
    [reply] = store_msg("alice", "order " + "pizza " * 200_000)
    assert f"first {MAX_EVENT_CHARS} characters" in reply
    assert len(reply) < 400  # the reply quotes a short excerpt, not the megabyte
    events = MemoryStore(memory_env).events("alice")
    assert len(events) == 2 and len(events[1].text) == MAX_EVENT_CHARS
    assert lookup("alice", "x" * 1_000_000)  # a huge query gets an answer too


def test_sql_metacharacters_lose_no_event(memory_env):
    store_msg("alice", "remember that my locker code is 4411")
    assert INJECTION in store_msg("alice", INJECTION)[0]
    assert store_msg(INJECTION, "remember that my pin is 1234")
    assert lookup(INJECTION, INJECTION)
    store = MemoryStore(memory_env)
    assert [e.text for e in store.events("alice")] == ["remember that my locker code is 4411", INJECTION]
    assert [e.text for e in store.events(INJECTION)] == ["remember that my pin is 1234"]
    assert "4411" in lookup("alice", "what is my locker code?")[0]


def test_unusable_database_gets_a_reply(memory_env, monkeypatch, tmp_path):
    from examples.memory_bot.actions import settings

    monkeypatch.setenv(settings.DB_ENV, str(tmp_path))  # a directory, not a file
    assert store_msg("alice", "remember that my locker code is 4411") == [actions.STORE_FAILED]
    assert lookup("alice", "what is my locker code?") == [actions.LOOKUP_FAILED]


def test_bad_threshold_is_reported_with_its_value(monkeypatch):
    from examples.memory_bot.actions import settings

    monkeypatch.setenv(settings.MIN_SIMILARITY_ENV, "high")
    with pytest.raises(ValueError, match="'high'"):
        settings.min_similarity()
    monkeypatch.setenv(settings.MIN_SIMILARITY_ENV, "2")
    with pytest.raises(ValueError, match="outside"):
        settings.min_similarity()


def test_rasas_anonymous_sender_touches_no_memory(memory_env):
    # Rasa names a conversation "default" when a channel gives no sender: that is nobody.
    assert store_msg("default", "remember that my pin is 1234") == [actions.NO_SENDER]
    assert lookup("default", "what is my pin?") == [actions.NO_SENDER]
    assert MemoryStore(memory_env).count() == 0


@pytest.mark.parametrize("text", ["remember that my passport number is X123",
                                  "ricorda che il codice del cancello è 5560",
                                  "记住我的护照号码是X123"])
def test_an_explicit_store_request_routed_to_recall_is_stored(memory_env, text):
    [reply] = lookup("alice", text)
    assert reply.startswith("Done ✓")
    assert [e.text for e in MemoryStore(memory_env).events("alice")] == [text]


PARCELS = {"IKEA": "4821", "Zalando": "1937", "Amazon": "7702", "Decathlon": "3358", "Apple": "9164",
           "Lidl": "2049", "H&M": "6613", "Nike": "5286", "Fnac": "8470", "Ikea Family card": "0395"}


def test_recall_quotes_the_right_one_of_ten_similar_facts(memory_env):
    for shop, number in PARCELS.items():
        store_msg("alice", f"remember that the tracking number of my {shop} parcel is {number}")
    wrong = {}
    for shop, number in PARCELS.items():
        [answer] = lookup("alice", f"what is the tracking number of my {shop} parcel?")
        if number not in answer:
            wrong[shop] = answer
    assert len(wrong) <= 1, wrong


def test_the_same_rasa_message_is_stored_once(memory_env):
    # Rasa gives every user message an id; the action running twice for it (a retry) stores it once.
    latest = {"text": "remember that my locker code is 4411", "intent": {"name": "action", "confidence": 0.9},
              "message_id": "5f1c0d6e"}
    assert store_msg("alice", None, latest=latest) == store_msg("alice", None, latest=latest)
    assert lookup("alice", None, latest={**latest, "intent": {"name": "recall"}})[0].startswith("Done ✓")
    assert [e.text for e in MemoryStore(memory_env).events("alice")] == [latest["text"]]


@pytest.mark.slow
def test_the_actions_use_postgresql_when_the_url_says_so(memory_env, monkeypatch, local_postgres):
    import uuid

    from examples.memory_bot.actions import server_guard, settings
    from examples.memory_bot.actions.memory import open_store

    url = local_postgres.create_database(f"a_{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv(settings.DB_ENV, url)
    assert "4411" in store_msg("alice", "remember that my locker code is 4411")[0]
    store_msg("bruno", "set an alarm for 6 am")
    assert "4411" in lookup("alice", "¿cuál es el código de mi taquilla?")[0]
    assert "4411" not in lookup("bruno", "what is my locker code?")[0]
    assert actions.get_store(url).backend == "postgresql"
    assert [e.text for e in open_store(url).events("alice")] == ["remember that my locker code is 4411"]
    assert not memory_env.exists() or MemoryStore(memory_env).count() == 0  # nothing went to SQLite
    assert server_guard.readiness_problems() == []
    # A wrong password: readiness names the database without the password, and the actions reply.
    wrong = url.replace(local_postgres.password, "wrong-password-123")
    monkeypatch.setenv(settings.DB_ENV, wrong)
    [problem] = server_guard.readiness_problems()
    assert "memory database" in problem and "wrong-password-123" not in problem and local_postgres.password not in problem
    assert store_msg("alice", "remember that my bike lock code is 2580") == [actions.STORE_FAILED]
