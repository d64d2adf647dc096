"""Errors that a user can fix (a bad option, a damaged or mismatched file), as opposed to bugs.

``rasa-intent-student`` prints a ``StudentError`` as one line, ``error: ...``, and exits
with status 1; any other exception is a bug and keeps its traceback.
"""


class StudentError(ValueError):
    """A user error: a bad argument or option, or input that cannot be used as given.

    A ValueError subclass, so that ``except ValueError`` written before it existed still works.
    """


class IntegrityError(StudentError):
    """A model file is damaged or does not match what its manifest or meta file records.

    The message names the file and says how to fix it (restore, rebuild or retrain).
    """


def install_hint(extra: str) -> str:
    """What a pip user runs to get an extra, e.g. ``pip install "rasa-intent-student[eval]"``."""
    return f'pip install "rasa-intent-student[{extra}]"'


def require_extra(modules, why: str, extra: str = "eval") -> None:
    """Raise StudentError naming ``extra`` when a module in ``modules`` is not installed (nothing is imported)."""
    import importlib.util

    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise StudentError(f"{why} needs {', '.join(missing)}, which {verb} not installed: {install_hint(extra)}")
