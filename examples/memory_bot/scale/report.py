"""The scale check's printed tables and its JSON summary."""
import argparse
from pathlib import Path
from typing import Dict, List, Tuple

from .plan import LANGUAGES, Message

# Counts that must all be 0 for the check to pass.
FAILURES = ("lost", "duplicates", "leaks", "order_errors", "errors")


def describe_endpoints(path: Path) -> Dict[str, str]:
    """{"lock_store": …, "tracker_store": …} as the endpoints file configures them (no variables expanded)."""
    import yaml

    config = yaml.safe_load(path.read_text()) or {}
    lock = (config.get("lock_store") or {}).get("type") or "in_memory"
    if str(lock).endswith("RedisLockStore"):  # Rasa's or this bot's atomic one: both keep the locks in Redis
        lock = "redis"
    tracker = config.get("tracker_store") or {}
    kind = str(tracker.get("type") or "in_memory").lower()
    return {"lock_store": str(lock).lower(),
            "tracker_store": f"{kind}/{tracker.get('dialect', 'sqlite')}" if kind == "sql" else kind}


def percentile(values: List[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def table(rows: List[List[object]], header: List[str]) -> str:
    cells = [[str(c) for c in row] for row in [header] + rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def replica_rows(messages: List[Message], replicas: int) -> List[List[object]]:
    """Per replica: messages served, non-200 answers, p50 and p95 latency."""
    rows = []
    for r in range(replicas):
        served = [m for m in messages if m.replica == r]
        lat = [m.latency_ms for m in served if m.status == 200]
        rows.append([f"rasa-{r}", len(served), sum(m.status != 200 for m in served),
                     f"{percentile(lat, 50):.0f}", f"{percentile(lat, 95):.0f}"])
    return rows


def check_rows(result: Dict[str, object], tracker_counts: Tuple[int, int], redis_commands: object,
               startup_s: float, restart_s: float) -> List[List[object]]:
    """The table of what was checked and found."""
    rows, conversations = tracker_counts
    return [["store requests", result["store_requests"]], ["stored exactly once", result["stored"]],
            ["lost", result["lost"]], ["duplicates", result["duplicates"]], ["leaks", result["leaks"]],
            ["trackers out of order", result["order_errors"]], ["failed messages", result["errors"]],
            ["recall answers (own facts)", f"{result['recall_answered']} of {result['recalls']} recalls, "
                                           f"{result['recall_right_fact']} the fact asked for"],
            ["recall/small talk routed to action", result["other_route_stored"]],
            ["tracker rows / conversations", f"{rows} / {conversations}"],
            ["redis commands (locks)", redis_commands],
            ["startup / restart s", f"{startup_s:.0f} / {restart_s:.0f}"]]


def summarize(args: argparse.Namespace, stores: Dict[str, str], messages: List[Message], result: Dict[str, object],
              load_s: float, restart_s: float, total_s: float) -> Dict[str, object]:
    """The JSON summary (the last line printed); ``ok`` when no failure count is above 0."""
    latencies = [m.latency_ms for m in messages if m.status == 200]
    summary = {
        "replicas": args.replicas, "action_servers": args.action_servers, "memory_backend": "postgresql",
        **stores, "users": args.users, "messages": len(messages),
        "languages": len(LANGUAGES), "store_requests": result["store_requests"], "stored": result["stored"],
        "lost": result["lost"], "duplicates": result["duplicates"], "leaks": result["leaks"],
        "order_errors": result["order_errors"], "errors": result["errors"],
        "recalls": result["recalls"], "recall_answered": result["recall_answered"],
        "recall_right_fact": result["recall_right_fact"], "replica_restarts": 1,
        "p50_ms": round(percentile(latencies, 50)), "p95_ms": round(percentile(latencies, 95)),
        "msgs_per_s": round(len(messages) / load_s, 2) if load_s else 0.0,
        "load_s": round(load_s, 1), "restart_s": round(restart_s, 1), "total_s": round(total_s, 1),
        "pgvector": False,
    }
    summary["bursts"] = sum(m.burst for m in messages)
    summary["ok"] = not any(summary[k] for k in FAILURES)
    return summary
