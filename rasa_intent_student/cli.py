"""The ``rasa-intent-student`` console script: one subcommand per stage.

Each subcommand lives in ``rasa_intent_student/commands/<name>.py`` and exposes
``add_parser(subparsers)``, which registers its arguments and sets ``func``:
a callable taking the parsed namespace and returning an exit code. Command
modules import heavy libraries (torch, rasa) only inside ``func``, so
``--help`` works in either virtual environment.
"""
import argparse
import importlib
import logging
import sys
from typing import List, Optional

from rasa_intent_student import __version__

COMMANDS = ("build", "distill", "encode", "evaluate", "bench")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rasa-intent-student",
        description="Build, distill, evaluate and benchmark the multilingual student encoder.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"rasa_intent_student.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"rasa_intent_student.commands.{name}":
                raise
            continue  # a stage not written yet
        module.add_parser(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
