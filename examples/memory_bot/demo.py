"""`make demo`: train memory_bot, start both servers on loopback, play a multilingual two-user conversation.

The servers run secured (see servers.py): the users are signed in with tokens minted here, as a
website's login would mint them.

Run from the repository root:
    python -m examples.memory_bot.demo [--rasa-port 5005] [--action-port 5055] [--demo-dir .demo/memory_bot]
"""
import argparse
import logging
import os
import signal
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence

from .servers import (
    BOT_DIR,
    DEFAULT_ACTION_PORT,
    DEFAULT_RASA_PORT,
    LOOPBACK,
    BotServers,
    ServerError,
    check_port_free,
    train,
)

logger = logging.getLogger(__name__)

REPO_ROOT = BOT_DIR.parents[1]
DEFAULT_DEMO_DIR = REPO_ROOT / ".demo" / "memory_bot"
RASA_PORT_ENV = "MEMORY_BOT_RASA_PORT"
ACTION_PORT_ENV = "MEMORY_BOT_ACTION_PORT"
DEMO_MODEL_NAME = "memory_bot"


class Turn(NamedTuple):
    """One scripted message, the route it should take and text its reply should (not) contain."""

    sender: str
    lang: str
    text: str
    route: str
    expect: str = ""
    reject: str = ""


# Two users, six languages. Alice stores her locker code in English and asks for it in
# Spanish; Bruno asks the same question and must not see Alice's memory.
SCRIPT: List[Turn] = [
    Turn("alice", "en", "hi there!", "other"),
    Turn("alice", "en", "remember that my locker code is 4411", "action", expect="4411"),
    Turn("bruno", "ko", "안녕하세요!", "other"),
    Turn("alice", "fr", "réserve une table pour deux demain à 20 heures", "action"),
    Turn("bruno", "ja", "明日の朝6時にアラームをセットして", "action"),
    Turn("alice", "es", "¿cuál es el código de mi taquilla?", "recall", expect="4411"),
    Turn("bruno", "es", "¿cuál es el código de mi taquilla?", "recall", reject="4411"),
    Turn("bruno", "ja", "明日のアラームは何時にセットしたっけ？", "recall", expect="6時"),
    Turn("alice", "ru", "спасибо большое!", "other"),
]

# Played after a restart of both servers: memory must have survived.
AFTER_RESTART: List[Turn] = [
    Turn("alice", "fr", "quel est le code de mon casier ?", "recall", expect="4411"),
    Turn("bruno", "de", "danke, tschüss!", "other"),
]


class Result(NamedTuple):
    turn: Turn
    route: str
    confidence: float
    replies: List[str]
    latency_ms: float

    @property
    def problems(self) -> List[str]:
        """What differs from the script's expectations (empty when all is as scripted)."""
        text = " ".join(self.replies)
        found = []
        if self.route != self.turn.route:
            found.append(f"route {self.route!r}, expected {self.turn.route!r}")
        if self.turn.expect and self.turn.expect not in text:
            found.append(f"reply lacks {self.turn.expect!r}")
        if self.turn.reject and self.turn.reject in text:
            found.append(f"reply contains {self.turn.reject!r}")
        return found


def play(servers: BotServers, turns: Sequence[Turn], out=None) -> List[Result]:
    """Send each turn through the REST channel, read its route from the tracker, print it if ``out``."""
    results = []
    for turn in turns:
        start = time.perf_counter()
        replies = servers.say(turn.sender, turn.text)
        latency_ms = (time.perf_counter() - start) * 1000
        route, confidence = servers.route(turn.sender)
        result = Result(turn, route, confidence, replies, latency_ms)
        results.append(result)
        if out is not None:
            print_result(result, out)
    return results


def print_result(result: Result, out) -> None:
    turn = result.turn
    print(f"[{turn.sender} · {turn.lang}] {turn.text}", file=out)
    mark = "" if not result.problems else "   <-- " + "; ".join(result.problems)
    print(f"    route: {result.route} ({result.confidence:.2f})   {result.latency_ms:.0f} ms{mark}", file=out)
    for reply in result.replies or ["(no reply)"]:
        print(f"    bot:   {reply}", file=out)
    out.flush()


@dataclass
class DemoArgs:
    rasa_port: int
    action_port: int
    demo_dir: Path
    keep_memory: bool


def parse_args(argv: Optional[Sequence[str]]) -> DemoArgs:
    parser = argparse.ArgumentParser(prog="python -m examples.memory_bot.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--rasa-port", type=int, default=int(os.environ.get(RASA_PORT_ENV, DEFAULT_RASA_PORT)),
                        help=f"Rasa server port on {LOOPBACK} (env {RASA_PORT_ENV}; default {DEFAULT_RASA_PORT})")
    parser.add_argument("--action-port", type=int,
                        default=int(os.environ.get(ACTION_PORT_ENV, DEFAULT_ACTION_PORT)),
                        help=f"action server port (env {ACTION_PORT_ENV}; default {DEFAULT_ACTION_PORT})")
    parser.add_argument("--demo-dir", type=Path, default=DEFAULT_DEMO_DIR,
                        help="logs, endpoints.yml and the memory db (default .demo/memory_bot)")
    parser.add_argument("--keep-memory", action="store_true", help="keep the memory db of a previous demo run")
    a = parser.parse_args(argv)
    return DemoArgs(a.rasa_port, a.action_port, a.demo_dir.resolve(), a.keep_memory)


def raise_interrupt(signum: int, frame: object) -> None:
    # SIGTERM (e.g. from CI) unwinds like Ctrl-C, so the servers are stopped in `finally`.
    raise KeyboardInterrupt


def run_demo(args: DemoArgs, out=sys.stdout) -> int:
    """Train, serve, play SCRIPT, stop; return 0 when every turn went as scripted."""
    timings: Dict[str, float] = {}
    t0 = time.perf_counter()
    # Check ports before the minute of training, not after.
    check_port_free(LOOPBACK, args.rasa_port, "Rasa server", "--rasa-port")
    check_port_free(LOOPBACK, args.action_port, "Action server", "--action-port")
    args.demo_dir.mkdir(parents=True, exist_ok=True)
    db = args.demo_dir / "memory.db"
    trackers = args.demo_dir / "trackers.db"
    if not args.keep_memory:
        for path in (db, trackers):
            if path.exists():
                path.unlink()

    print(f"Training {BOT_DIR.relative_to(REPO_ROOT)} (unchanged parts come from Rasa's cache)…", file=out, flush=True)
    # One archive, overwritten: every run packs a new ~25 MB model even when all comes from the cache.
    model = train(BOT_DIR, log_path=args.demo_dir / "train.log", fixed_name=DEMO_MODEL_NAME)
    timings["train"] = time.perf_counter() - t0

    servers = BotServers(model=model, work_dir=args.demo_dir, rasa_port=args.rasa_port,
                         action_port=args.action_port, db_path=db, tracker_db=trackers)
    print(f"Starting Rasa on {servers.rasa_url} and actions on {servers.action_url} (random per-run JWT secret, "
          f"action token and API token; each user's messages carry a token minted for them)…", file=out, flush=True)
    t1 = time.perf_counter()
    try:
        servers.start()
        timings["start"] = time.perf_counter() - t1
        print(f"Ready in {timings['start']:.1f} s. Conversation:\n", file=out, flush=True)
        t2 = time.perf_counter()
        results = play(servers, SCRIPT, out=out)
        timings["conversation"] = time.perf_counter() - t2
    finally:
        t3 = time.perf_counter()
        servers.stop()
        timings["stop"] = time.perf_counter() - t3
    timings["total"] = time.perf_counter() - t0

    latencies = [r.latency_ms for r in results]
    print(f"\n{len(results)} messages, latency per message as seen by the client: "
          f"median {statistics.median(latencies):.0f} ms, max {max(latencies):.0f} ms", file=out)
    print("Time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()), file=out)
    print(f"Memory db: {db}   logs: {args.demo_dir}", file=out)
    failed = [r for r in results if r.problems]
    if failed:
        print(f"{len(failed)} message(s) did not go as scripted (marked <--).", file=out)
    return 1 if failed else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        return run_demo(parse_args(argv))
    except (ServerError, OSError) as e:  # OSError: a server stopped answering (connection refused, timeout)
        print(f"demo failed: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; both servers were stopped.", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
