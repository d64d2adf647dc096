"""What the scale check verifies afterwards: memory (lost, duplicated, leaked), trackers (order) and replies."""
import re
import urllib.parse
from typing import Dict, List, Tuple

from .. import auth_channel
from .plan import Message
from .stack import Stack

QUOTE_RE = re.compile(r"you told me: “(.*?)(…)?”", re.S)
DONE = "Done ✓"


def tracker_problem(events: List[dict], plan: List[Message]) -> str:
    """Why the user's tracker events are not the user's messages in order, each fully handled before the
    next (user, bot replies, action_listen); "" when they are. A burst pair may be in either order."""
    texts = [e.get("text") for e in events if e.get("event") == "user"]
    expected = [m.text for m in plan]
    if len(texts) != len(expected):
        return f"tracker holds {len(texts)} user messages, {len(expected)} were sent"
    i = 0
    while i < len(expected):
        pair = plan[i].burst and i + 1 < len(expected)
        if pair and sorted(texts[i:i + 2]) == sorted(expected[i:i + 2]):
            i += 2
            continue
        if texts[i] != expected[i]:
            return f"message {i} is {texts[i]!r} in the tracker, {expected[i]!r} was sent"
        i += 1
    pending = None  # what the latest user message still lacks before the next may start
    for e in events:
        kind = e.get("event")
        if kind == "user":
            if pending:
                return f"a message started before the previous one was handled ({', '.join(sorted(pending))} missing)"
            pending = {"bot", "action_listen"}
        elif pending and kind == "bot":
            pending.discard("bot")
        elif pending and kind == "action" and e.get("name") == "action_listen":
            pending.discard("action_listen")
    return f"the last message lacks {', '.join(sorted(pending))}" if pending else ""


def fetch_memory(stack: Stack) -> Dict[str, List[str]]:
    """Every user's stored texts, oldest first, straight from PostgreSQL."""
    import psycopg2

    from ..actions.memory import PG_TABLE

    conn = psycopg2.connect(stack.pg.url("memory"))
    try:
        with conn, conn.cursor() as cursor:
            cursor.execute(f"SELECT sender_id, text FROM {PG_TABLE} ORDER BY id")
            rows = cursor.fetchall()
    finally:
        conn.close()
    memory: Dict[str, List[str]] = {}
    for sender, text in rows:
        memory.setdefault(sender, []).append(text)
    return memory


def fetch_tracker_events(stack: Stack, user: str, replica: int) -> List[dict]:
    """The user's tracker events (all sessions) from PostgreSQL, read through replica ``replica``."""
    tracker = stack.rasa[replica].api("GET", f"/conversations/{urllib.parse.quote(user, safe='')}/tracker")
    return list(tracker.get("events") or [])


def tracker_rows(stack: Stack) -> Tuple[int, int]:
    """(rows, conversations) in Rasa's tracker table in PostgreSQL."""
    import psycopg2

    conn = psycopg2.connect(stack.pg.url("rasa"))
    try:
        with conn, conn.cursor() as cursor:
            cursor.execute("SELECT COUNT(*), COUNT(DISTINCT sender_id) FROM events")
            return tuple(int(x) for x in cursor.fetchone())
    finally:
        conn.close()


def check(stack: Stack, plans: List[List[Message]]) -> Dict[str, object]:
    """Count lost, duplicated and leaked memories, out-of-order trackers and failed messages."""
    memory = fetch_memory(stack)
    users = {plan[0].user for plan in plans}
    codes = {m.code: m.user for plan in plans for m in plan if m.kind == "store"}
    result = {"store_requests": 0, "stored": 0, "lost": 0, "duplicates": 0, "leaks": 0, "order_errors": 0,
              "errors": 0, "recall_answered": 0, "recall_right_fact": 0, "recalls": 0,
              "other_route_stored": 0}
    problems: List[str] = []
    for sender in memory:
        if sender not in users:
            result["leaks"] += len(memory[sender])
            problems.append(f"memory of unknown sender {sender!r}")
    for u, plan in enumerate(plans):
        user = plan[0].user
        rows = memory.get(user, [])
        sent = [m.text for m in plan]
        for text in set(rows):
            if text not in sent:  # someone else's text in this user's memory
                result["leaks"] += rows.count(text)
                problems.append(f"{user}: memory holds {text!r}, never sent by them")
            elif rows.count(text) > sent.count(text):
                result["duplicates"] += rows.count(text) - sent.count(text)
                problems.append(f"{user}: {text!r} stored {rows.count(text)} times")
        for m in plan:
            ok_status = m.status == 200 and m.replies and auth_channel.UNAVAILABLE not in m.replies
            if not ok_status:
                result["errors"] += 1
                problems.append(f"{user} #{m.index} via replica {m.replica}: HTTP {m.status} {m.error} {m.replies}")
            if m.kind == "store":
                result["store_requests"] += 1
                n = rows.count(m.text)
                result["stored"] += n == 1
                if n == 0:
                    result["lost"] += 1
                    problems.append(f"{user} #{m.index}: {m.text!r} not in memory (reply {m.replies})")
                if ok_status and not (m.replies[0].startswith(DONE) and m.code in m.replies[0]):
                    result["errors"] += 1  # not confirmed, or confirmed with another message's text
                    problems.append(f"{user} #{m.index}: store request {m.text!r} answered {m.replies}")
            elif m.text in rows:
                result["other_route_stored"] += 1  # a recall or small talk the classifier sent to `action`
            if m.kind == "recall":
                result["recalls"] += 1
            for reply in m.replies:
                quote = QUOTE_RE.search(reply)
                if quote:
                    quoted = quote.group(1)
                    result["recall_answered"] += 1
                    if not any(t == quoted or (quote.group(2) and t.startswith(quoted)) for t in sent):
                        result["leaks"] += 1
                        problems.append(f"{user} #{m.index}: recall quoted {quoted!r}, not theirs")
                    elif m.code and m.code in quoted:
                        result["recall_right_fact"] += 1
                for code in re.findall(r"(?<!\d)7\d{5}(?!\d)", reply):
                    if code in codes and codes[code] != user:
                        result["leaks"] += 1
                        problems.append(f"{user} #{m.index}: reply carries {codes[code]}'s code {code}")
        problem = tracker_problem(fetch_tracker_events(stack, user, (u + 1) % len(stack.rasa)), plan)
        if problem:
            result["order_errors"] += 1
            problems.append(f"{user}: {problem}")
    result["problems"] = problems
    return result
