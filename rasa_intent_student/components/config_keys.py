"""Unknown component config keys: a typo such as ``thread: 2`` is an error that names the key, not ignored.

Rasa 3.6 hands a component the pipeline entry of ``config.yml`` without its ``name``, merged over
``get_default_config()``: every key it passes is therefore a default key or one the user wrote.
The recipe adds ``epochs`` and ``finetuning_epoch_fraction`` only for components whose defaults have
``epochs`` (neither component here), so the valid keys are the defaults plus ``name``.
"""
import difflib
from typing import Any, Dict, Iterable

from rasa.shared.exceptions import InvalidConfigException

# Keys Rasa itself may leave in a component's config (it pops `name`, but a hand-built config may keep it).
RASA_KEYS = ("name",)


def check_config_keys(component: str, config: Dict[str, Any], valid: Iterable[str]) -> None:
    """Raise InvalidConfigException for the first key of ``config`` not in ``valid`` (or ``RASA_KEYS``).

    The message names the key and the component, suggests the closest valid key when
    one is close (``difflib.get_close_matches``), and lists the valid keys.
    """
    known = sorted(set(valid))
    for key in config:
        if key in known or key in RASA_KEYS:
            continue
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        if not close:  # `batchsize` vs `batch_size`, `Threads` vs `threads`: compare without case and underscores
            squashed = {k.replace("_", "").lower(): k for k in known}
            hit = difflib.get_close_matches(str(key).replace("_", "").replace("-", "").lower(), list(squashed), n=1)
            close = [squashed[hit[0]]] if hit else []
        hint = f"; did you mean '{close[0]}'?" if close else "."
        raise InvalidConfigException(
            f"Unknown key '{key}' for {component}{hint} Valid keys: {', '.join(known)}. "
            "Fix or remove it in the pipeline entry of config.yml."
        )
