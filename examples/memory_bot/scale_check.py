"""`make scale-check`: memory_bot on Rasa's distributed stack, on loopback, checked for lost, duplicated
and leaked memories.

It starts, all on 127.0.0.1 and all stopped at the end:

    PostgreSQL (tracker store "rasa" + memory "memory")   Redis (lock store)
    N `rasa run` replicas with endpoints.production.yml   M action servers behind a round-robin proxy

then plays U concurrent users x K messages in several languages through the authenticated channel
(`auth_rest`, one JWT per user): explicit store requests, recall questions and small talk, each user's
messages round-robin over the replicas, as a load balancer without sticky sessions would send them; one
message in ten goes out together with the next one, to another replica (a double click).
After the first part, replica 0 is restarted and the users come back. Checked afterwards:

- every store request is in the memory exactly once (`lost`, `duplicates`);
- each user's tracker holds exactly the user's messages, in the order sent (a simultaneous pair in either
  order), each handled (bot reply, action_listen) before the next one starts (`order_errors`);
- recall answers only quote the asking user's own messages, and no reply carries another user's code
  (`leaks`); nobody's memory holds another user's text;
- every message got HTTP 200 and a real reply; store requests got "Done ✓" (`errors`).

A summary table is printed, and as the last line a JSON object. Exit status 1 when any count above is
not 0, 2 when the servers could not be started.

The parts are in scale/: plan.py (what users say), stack.py and proxy.py (the servers), load.py,
checks.py and report.py.

    python -m examples.memory_bot.scale_check [--replicas 2] [--action-servers 2] [--users 20] [--messages 20]
"""
import argparse
import json
import logging
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

from .processes import LOOPBACK, ServerError
from .scale.checks import DONE, check, tracker_problem, tracker_rows
from .scale.load import play
from .scale.plan import LANGUAGES, Message, plan_user
from .scale.report import check_rows, describe_endpoints, replica_rows, summarize, table
from .scale.stack import PRODUCTION_ENDPOINTS, Stack
from .training import BOT_DIR, train

# Re-exported: the tests import these from here.
__all__ = ["BOT_DIR", "DONE", "LANGUAGES", "Message", "check", "main", "plan_user", "run", "tracker_problem"]

logger = logging.getLogger("scale_check")

# Share of each user's messages sent before the replica restart.
FIRST_PART = 0.6


def run(args: argparse.Namespace) -> Dict[str, object]:
    """Start the stack, play the load with a replica restart in the middle, check; the JSON summary."""
    t0 = time.monotonic()
    work_dir = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="memory-bot-scale-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    model = Path(args.model) if args.model else None
    if model is None:
        logger.info("Training memory_bot (unchanged parts come from Rasa's cache)…")
        model = train(BOT_DIR, out_dir=work_dir / "models", log_path=work_dir / "train.log", fixed_name="memory_bot")
    plans = [plan_user(u, args.messages) for u in range(args.users)]
    split = max(1, min(args.messages - 1, round(args.messages * FIRST_PART)))
    endpoints = Path(args.endpoints)
    stores = describe_endpoints(endpoints)
    stack = Stack(model=model, work_dir=work_dir, replicas=args.replicas, action_servers=args.action_servers,
                  student=args.student, endpoints=endpoints)
    stack.start()
    try:
        startup_s = time.monotonic() - t0
        logger.info("Part 1: %d users x %d messages over %d replica(s)…", args.users, split, args.replicas)
        load_s = play(stack, plans, 0, split)
        restart_s = stack.restart_rasa(0)
        logger.info("Replica 0 restarted in %.0f s; part 2: %d users x %d messages…", restart_s, args.users,
                    args.messages - split)
        load_s += play(stack, plans, split, args.messages)
        logger.info("Checking memory, trackers and replies…")
        result = check(stack, plans)
        rows, conversations = tracker_rows(stack)
        redis_info = stack.redis.client().info("stats")
        action_calls = {f"actions-{i}": stack.proxy.counts[(LOOPBACK, s.action_port)] for i, s in enumerate(stack.actions)}
    finally:
        stack.stop()
    messages = [m for plan in plans for m in plan]
    problems = result.pop("problems")
    print(f"\nmemory_bot scale check: {args.replicas} Rasa replica(s), {args.action_servers} action servers, "
          f"tracker store {stores['tracker_store']}, lock store {stores['lock_store']}, memory in PostgreSQL "
          f"({endpoints.name}); {args.users} users x {args.messages} messages "
          f"in {len(LANGUAGES)} languages; replica 0 restarted after message {split}.\n")
    print(table(replica_rows(messages, args.replicas), ["replica", "messages", "non-200", "p50 ms", "p95 ms"]))
    print()
    print(table([[k, v] for k, v in action_calls.items()], ["action server", "calls"]))
    print()
    print(table(check_rows(result, (rows, conversations), redis_info.get("total_commands_processed"), startup_s,
                           restart_s), ["check", "result"]))
    for problem in problems[:30]:
        print("PROBLEM:", problem)
    summary = summarize(args, stores, messages, result, load_s, restart_s, time.monotonic() - t0)
    if summary["ok"] and not args.keep and not args.work_dir:
        shutil.rmtree(work_dir, ignore_errors=True)
    else:
        logger.info("Logs kept in %s", work_dir)
    return summary


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=2, help="Rasa replicas (default 2)")
    parser.add_argument("--action-servers", type=int, default=2, help="action servers (default 2)")
    parser.add_argument("--users", type=int, default=20, help="concurrent users (default 20)")
    parser.add_argument("--messages", type=int, default=20, help="messages per user (default 20)")
    parser.add_argument("--model", help="trained memory_bot archive (default: train one, mostly from the cache)")
    parser.add_argument("--student", help="student directory for the action servers (default: the package's)")
    parser.add_argument("--endpoints", default=str(PRODUCTION_ENDPOINTS),
                        help="endpoints file of the replicas (default endpoints.production.yml); e.g. one without "
                             "lock_store shows what the Redis lock prevents")
    parser.add_argument("--work-dir", help="where logs go (default: a temporary directory, removed on success)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    for name in ("replicas", "action_servers", "users", "messages"):
        if getattr(args, name) < 1 or (name == "messages" and args.messages < 2):
            parser.error(f"--{name.replace('_', '-')} must be at least {2 if name == 'messages' else 1}")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    args = parse_args(argv)
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so every server started is stopped again.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        summary = run(args)
    except ServerError as e:
        logger.error("%s", e)
        print(json.dumps({"replicas": args.replicas, "ok": False, "error": str(e)[:500]}))
        return 2
    print(json.dumps(summary))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
