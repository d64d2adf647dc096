"""The scale check (examples/memory_bot/scale_check.py, scale/): its plan and its checks without servers, then the
real thing: PostgreSQL, Redis, 2 Rasa replicas and 2 action servers on loopback (slow)."""
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from examples.memory_bot import scale_check
from examples.memory_bot.actions.store_phrases import is_explicit_store
from examples.memory_bot.scale import checks
from examples.memory_bot.scale_check import DONE, Message, check, plan_user, tracker_problem

REPO_ROOT = scale_check.BOT_DIR.parents[1]


def test_the_plan_mixes_kinds_and_languages_with_codes_unique_to_each_user():
    plans = [plan_user(u, 20) for u in range(20)]
    assert len({p[0].user.rsplit("-", 1)[1] for p in plans}) == len(scale_check.LANGUAGES) >= 6
    for plan in plans:
        kinds = [m.kind for m in plan]
        assert {"store", "recall", "small"} == set(kinds) and kinds.count("store") >= 5
        assert all(is_explicit_store(m.text) for m in plan if m.kind == "store")
        assert len({m.text for m in plan if m.kind == "store"}) == kinds.count("store")
    codes = [m.code for p in plans for m in p if m.kind == "store"]
    assert len(codes) == len(set(codes))
    assert not any(a != b and a in b for a in codes for b in codes)  # no code inside another


def events_for(*texts):
    """Tracker events of messages each handled in full: user, bot reply, action_listen."""
    events = [{"event": "action", "name": "action_session_start"}, {"event": "action", "name": "action_listen"}]
    for text in texts:
        events += [{"event": "user", "text": text}, {"event": "bot", "text": "ok"},
                   {"event": "action", "name": "action_listen"}]
    return events


def test_tracker_problem_accepts_order_and_burst_swaps_only():
    plan = [Message("u", i, "small", t) for i, t in enumerate(["a", "b", "c", "d"])]
    assert tracker_problem(events_for("a", "b", "c", "d"), plan) == ""
    assert "message 1" in tracker_problem(events_for("a", "c", "b", "d"), plan)
    plan[1].burst = True  # b and c were sent at once: either order
    assert tracker_problem(events_for("a", "c", "b", "d"), plan) == ""
    assert "3 user messages" in tracker_problem(events_for("a", "b", "d"), plan)
    interleaved = [{"event": "user", "text": "a"}, {"event": "user", "text": "b"}, {"event": "bot", "text": "ok"},
                   {"event": "action", "name": "action_listen"}]
    assert "before the previous one" in tracker_problem(interleaved, plan[:2])


def test_check_counts_lost_duplicated_and_leaked_memories(monkeypatch):
    alice = [Message("alice", 0, "store", "remember that my locker code is 700101", "700101", status=200,
                     replies=[f"{DONE} “remember that my locker code is 700101”. Saved to your memory."]),
             Message("alice", 1, "store", "note that the gate code is 700102", "700102", status=200,
                     replies=[f"{DONE} “note that the gate code is 700102”. Saved to your memory."]),
             Message("alice", 2, "recall", "what is my locker code?", "700101", status=200,
                     replies=["On 2026-01-01 10:00 you told me: “remember that my locker code is 700201”"])]
    bruno = [Message("bruno", 0, "store", "remember that my locker code is 700201", "700201", status=200,
                     replies=[f"{DONE} “remember that my locker code is 700201”. Saved to your memory."]),
             Message("bruno", 1, "small", "hi", status=503, replies=[])]
    memory = {"alice": ["remember that my locker code is 700101", "remember that my locker code is 700101"],
              "bruno": ["remember that my locker code is 700201", "note that the gate code is 700102"]}
    monkeypatch.setattr(checks, "fetch_memory", lambda stack: memory)
    trackers = {"alice": events_for(*[m.text for m in alice]), "bruno": events_for(bruno[0].text)}
    monkeypatch.setattr(checks, "fetch_tracker_events", lambda stack, user, replica: trackers[user])
    result = check(SimpleNamespace(rasa=[None, None]), [alice, bruno])
    assert result["lost"] == 1  # alice's gate code is not in her memory
    assert result["duplicates"] == 1  # her locker code twice
    # alice's recall quoted bruno's text and carries his code; bruno's memory holds alice's gate code
    assert result["leaks"] == 3
    assert result["order_errors"] == 1 and result["errors"] == 1  # bruno's tracker lacks "hi", which got 503
    assert result["stored"] == 1 and result["store_requests"] == 3  # only bruno's is there exactly once


@pytest.mark.slow
def test_scale_check_with_two_replicas_loses_duplicates_and_leaks_nothing(memory_bot_model, student_dir, tmp_path):
    """The full `make scale-check` load (20 users x 20 messages, 2 replicas, a replica restart); about 1-3 minutes."""
    cmd = [sys.executable, "-m", "examples.memory_bot.scale_check", "--replicas", "2", "--action-servers", "2",
           "--users", "20", "--messages", "20", "--model", str(memory_bot_model), "--student", str(student_dir),
           "--work-dir", str(tmp_path / "scale")]
    done = subprocess.run(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=900)
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-3000:]
    summary = json.loads(lines[-1])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert summary["replicas"] == 2 and summary["users"] == 20 and summary["messages"] == 400
    assert (summary["memory_backend"], summary["lock_store"], summary["tracker_store"]) == (
        "postgresql", "redis", "sql/postgresql")
    assert summary["lost"] == summary["duplicates"] == summary["leaks"] == 0
    assert summary["order_errors"] == summary["errors"] == 0
    assert summary["stored"] == summary["store_requests"] > 0 and summary["bursts"] > 0
    assert summary["recall_answered"] > 0
