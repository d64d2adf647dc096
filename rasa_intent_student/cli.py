"""The ``rasa-intent-student`` console script: one subcommand per stage.

Each subcommand lives in ``rasa_intent_student/commands/<name>.py`` and exposes
``add_parser(subparsers)``, which registers its arguments and sets ``func``:
a callable taking the parsed namespace and returning an exit code. Commands are
registered explicitly in ``COMMANDS``; a missing module is an ImportError, not
a silently absent command. Command modules import heavy libraries (torch, rasa)
only inside ``func``, so ``--help`` works in either virtual environment. The
namespace also carries ``command_line``: the command as typed, for records such
as a model card.

User errors (``StudentError``: a bad option, a damaged or mismatched file; and
``FileNotFoundError``) print one ``error: ...`` line and exit with status 1. Any
other exception is a bug and keeps its traceback.
"""
import argparse
import logging
import shlex
import sys
from typing import List, Optional

from rasa_intent_student import __version__
from rasa_intent_student.commands import bench, build, distill, encode, evaluate, language_offsets, reference, route
from rasa_intent_student.errors import StudentError

PROG = "rasa-intent-student"
# In the order `--help` lists them.
COMMANDS = (build, distill, reference, language_offsets, evaluate, bench, encode, route)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Build, distill, evaluate and benchmark the multilingual student encoder; encode and route texts.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        try:
            module.add_parser(subparsers)
        except ImportError as e:  # a command whose options need an extra that is not installed
            _add_unavailable(subparsers, module.__name__.rsplit(".", 1)[-1], e)
    return parser


def _add_unavailable(subparsers: argparse._SubParsersAction, name: str, error: ImportError) -> None:
    """Keep the command listed; running it (with any arguments) says which extra to install."""
    message = str(error)

    def unavailable(args: argparse.Namespace) -> int:
        raise StudentError(f"`{name}` is unavailable in this environment: {message}")

    # No option prefix: every argument lands in `rest`, so the hint shows instead of a usage error.
    parser = subparsers.choices.get(name) or subparsers.add_parser(
        name, help="(unavailable here: needs an extra that is not installed)", add_help=False, prefix_chars="\x00"
    )
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    parser.set_defaults(func=unavailable)


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = make_parser()
    args = parser.parse_args(argv)
    args.command_line = shlex.join([PROG, *argv])
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (StudentError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
