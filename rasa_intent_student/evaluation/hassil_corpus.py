"""An intent corpus nobody in this project wrote: Home Assistant's sentence templates, expanded at run time.

The templates ship in the PyPI package ``home-assistant-intents`` (Apache-2.0,
https://github.com/OHF-Voice/intents) and are parsed with ``hassil``
(Apache-2.0). Nothing is copied into this repository: sentences are sampled
from the templates when the benchmark runs and cached under ``artifacts/``.

Templates refer to slot lists such as ``{area}`` or ``{name}`` that a real
home fills in. Those lists are empty in the package, so a template branch that
needs one is skipped, and every sentence is text from the package itself.
"""
import json
import logging
import os
import random
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from rasa_intent_student.errors import install_hint

logger = logging.getLogger(__name__)

# Our ISO 639-1 code -> the package's language code, where they differ.
HA_LANGUAGE = {"zh": "zh-CN"}
ATTEMPTS_PER_TEMPLATE = 12  # random realizations tried per template sentence


class _Unrealizable(Exception):
    """A template branch needs a slot list with no values."""


def _import_hassil():
    try:
        import hassil  # noqa: F401
        import home_assistant_intents  # noqa: F401
    except ImportError as e:
        raise ImportError(
            f"The quality benchmark needs hassil and home-assistant-intents: {install_hint('eval')} "
            "(tested with hassil==3.12.1, home-assistant-intents==2026.10.27)."
        ) from e


def corpus_versions() -> Dict[str, str]:
    from importlib import metadata

    return {name: metadata.version(name) for name in ("hassil", "home-assistant-intents")}


def _sample(expr, lists, rules, rng: random.Random) -> str:
    """One random realization of a hassil expression (all of hassil's full expansion is far too large)."""
    from hassil.expression import Alternative, ListReference, Permutation, RuleReference, Sequence, TextChunk
    from hassil.intents import RangeSlotList, TextSlotList

    if isinstance(expr, TextChunk):
        return expr.original_text
    if isinstance(expr, Alternative):  # also optionals "[...]": one branch is empty
        items = list(expr.items)
        rng.shuffle(items)
        for item in items:
            try:
                return _sample(item, lists, rules, rng)
            except _Unrealizable:
                continue
        raise _Unrealizable()
    if isinstance(expr, Permutation):
        items = list(expr.items)
        rng.shuffle(items)
        return " ".join(_sample(item, lists, rules, rng) for item in items)
    if isinstance(expr, Sequence):
        return "".join(_sample(item, lists, rules, rng) for item in expr.items)
    if isinstance(expr, ListReference):
        slot_list = lists.get(expr.list_name)
        if isinstance(slot_list, TextSlotList) and slot_list.values:
            return _sample(rng.choice(slot_list.values).text_in, lists, rules, rng)
        if isinstance(slot_list, RangeSlotList):
            return str(rng.choice(list(slot_list.get_numbers())))
        raise _Unrealizable()  # {area}, {name}, wildcards: filled by a real home
    if isinstance(expr, RuleReference):
        if expr.rule_name not in rules:
            raise _Unrealizable()
        return _sample(rules[expr.rule_name].expression, lists, rules, rng)
    raise TypeError(f"Unexpected hassil expression {type(expr).__name__}")


def expand_language(lang: str, max_per_intent: int, min_per_intent: int, seed: int = 0) -> Dict[str, List[str]]:
    """Distinct sentences per intent for one language.

    Returns:
        intent -> up to ``max_per_intent`` sentences (a seeded random subset of all
        realizations found); intents with fewer than ``min_per_intent`` are dropped.
        Empty when the package has no templates for the language.
    """
    _import_hassil()
    import home_assistant_intents
    from hassil import Intents
    from hassil.util import normalize_whitespace

    data = home_assistant_intents.get_intents(HA_LANGUAGE.get(lang, lang))
    if not data:
        return {}
    intents = Intents.from_dict(data)
    rng = random.Random(seed)
    corpus: Dict[str, List[str]] = {}
    for name, intent in sorted(intents.intents.items()):
        seen = set()
        for intent_data in intent.data:
            rules = {**intents.expansion_rules, **(intent_data.expansion_rules or {})}
            lists = {**intents.slot_lists, **(intent_data.slot_lists or {})}
            for sentence in intent_data.sentences:
                for _ in range(ATTEMPTS_PER_TEMPLATE):
                    try:
                        text = normalize_whitespace(_sample(sentence.expression, lists, rules, rng)).strip()
                    except _Unrealizable:
                        break
                    if text:
                        seen.add(text)
        if len(seen) >= min_per_intent:
            texts = sorted(seen)
            rng.shuffle(texts)
            corpus[name] = texts[:max_per_intent]
    return corpus


def load_corpus(
    languages: List[str],
    max_per_intent: int,
    min_per_intent: int,
    cache_dir: Optional[Path] = None,
    seed: int = 0,
) -> Dict[str, List[Tuple[str, str]]]:
    """(intent, text) pairs per language, from the JSON cache when the package versions and settings match.

    Languages with fewer than two usable intents are left out (a classifier needs two).
    """
    _import_hassil()
    versions = corpus_versions()
    result: Dict[str, List[Tuple[str, str]]] = {}
    for lang in languages:
        key = f"hassil-{versions['home-assistant-intents']}-{versions['hassil']}-{lang}-{max_per_intent}-{min_per_intent}-{seed}.json"
        path = cache_dir / key if cache_dir else None
        if path and path.is_file():
            corpus = json.loads(path.read_text(encoding="utf-8"))
        else:
            corpus = expand_language(lang, max_per_intent, min_per_intent, seed)
            if path:
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
                partial.write_text(json.dumps(corpus, ensure_ascii=False), encoding="utf-8")
                os.replace(partial, path)  # atomic: concurrent runs share the cache
        if len(corpus) < 2:
            logger.warning("Skipping %s: home-assistant-intents has %d intent(s) with >= %d sentences.", lang, len(corpus), min_per_intent)
            continue
        result[lang] = [(intent, text) for intent, texts in sorted(corpus.items()) for text in texts]
    return result
