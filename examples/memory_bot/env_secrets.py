"""Secrets that memory_bot's servers take from the environment, refused when unset or short.

Rasa imports auth_channel.py, and the action server the `actions` package, by their names in
the bot directory, while the tests and the demo import them as `examples.memory_bot...`;
both kinds of import find this module.
"""
import os
from typing import Mapping, Optional, Type


def require_secret(name: str, min_chars: int, shared_with: str, error: Type[Exception],
                   environ: Optional[Mapping[str, str]] = None) -> str:
    """``$name`` (from ``environ``, default ``os.environ``); raise ``error`` when it is unset or shorter than ``min_chars``.

    The message says who else needs the value (``shared_with``) and how to make one.
    """
    environ = os.environ if environ is None else environ
    value = environ.get(name, "")
    hint = (f"set {name} to at least {min_chars} random characters, {shared_with}, e.g. "
            f"export {name}=$(python -c 'import secrets; print(secrets.token_urlsafe({min_chars}))')")
    if not value.strip():
        raise error(f"{name} is not set; {hint}")
    if len(value) < min_chars:
        raise error(f"{name} has {len(value)} characters, too short; {hint}")
    return value
