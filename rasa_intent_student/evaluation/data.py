"""Labelled utterances for evaluation: JSONL (docs/ROUTES.md) or Rasa NLU YAML, a file or a directory.

JSONL rows are the three routes in the 18 languages. Rasa NLU YAML (``nlu.yml``, Rasa 3.x format)
may hold any intents: each ``- intent:`` item's examples become rows, entity annotations
(``[pizza](food)``, ``[pizza]{"entity": "food"}``) are reduced to their text, and the language is
the example's (or else the intent's) ``metadata: {lang: ..}`` where present, else ``und``.
"""
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from rasa_intent_student.routes import RouteExample, read_jsonl
from rasa_intent_student.errors import StudentError, install_hint


def load_examples(path: Union[str, Path]) -> List[RouteExample]:
    """Read a JSONL file in the docs/ROUTES.md format or a Rasa NLU YAML file (``.yml``/``.yaml``).

    A directory: every ``*.jsonl`` in it (sorted by name) or, when it has none, every YAML file
    under it (a Rasa project's ``data/``; files without an ``nlu:`` section add nothing).

    Raises:
        FileNotFoundError: the path does not exist, or a directory holds no ``*.jsonl``.
        ValueError: a malformed row; the message names the file and line number.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.jsonl")) or sorted(f for f in path.rglob("*") if f.suffix in YAML_SUFFIXES)
        if not files:
            raise FileNotFoundError(
                f"No *.jsonl or Rasa NLU *.yml files in directory {path}; pass a file or a directory of them."
            )
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(
            f"Data path {path} does not exist; pass a JSONL or Rasa NLU YAML file, or a directory of them."
        )
    examples: List[RouteExample] = []
    for file in files:
        examples.extend(read_nlu_yaml(file) if file.suffix in YAML_SUFFIXES else read_jsonl(file))
    if not examples:
        raise StudentError(f"{path} holds no examples (only blank lines); add rows like {{\"text\", \"label\", \"lang\"}}.")
    return examples


def check_known_labels(test: Sequence[RouteExample], train_labels: Sequence[str], where: str = "--data") -> None:
    """Reject test labels the router never saw in training, listing the training labels."""
    known = set(train_labels)
    unknown = sorted({e.label for e in test} - known)
    if unknown:
        count = sum(e.label in unknown for e in test)
        raise StudentError(
            f"Labels {unknown} in {where} ({count} rows) do not occur in the training data, which has labels "
            f"{sorted(known)}. Add training examples for them or remove those rows."
        )


YAML_SUFFIXES = (".yml", ".yaml")
UNKNOWN_LANG = "und"  # ISO 639-2 "undetermined": examples without a `lang` in their metadata
# [text](entity), [text](entity:value), [text]{"entity": ..}, [text]{..}[..]: keep only `text`.
_ENTITY = re.compile(r"\[(?P<text>[^\]]*)\](?:\([^)]*\)|\{[^}]*\})+")


def read_nlu_yaml(path: Union[str, Path]) -> List[RouteExample]:
    """The intent examples of one Rasa NLU YAML file (any intents); see the module docstring.

    Raises:
        StudentError: PyYAML is missing, the file is not YAML, or an intent item is malformed
            (the message names the file and the intent).
    """
    path = Path(path)
    try:
        import yaml
    except ImportError as e:
        raise StudentError(f"Reading {path} needs PyYAML: {install_hint('eval')}.") from e
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise StudentError(f"{path}: not valid YAML ({e}).") from e
    items = document.get("nlu") if isinstance(document, dict) else None
    if items is None:
        return []  # stories, rules or a domain: no NLU examples
    if not isinstance(items, list):
        raise StudentError(f"{path}: `nlu:` must be a list of items such as `- intent: greet`.")
    examples: List[RouteExample] = []
    for item in items:
        if isinstance(item, dict) and "intent" in item:  # synonyms, regexes and lookups are skipped
            examples.extend(_intent_examples(item, f"{path}: intent {item.get('intent')!r}"))
    return examples


def _intent_examples(item: Dict[str, Any], where: str) -> List[RouteExample]:
    intent, raw = item["intent"], item.get("examples")
    if not isinstance(intent, str) or not intent.strip():
        raise StudentError(f"{where}: the intent name must be a non-empty string.")
    default_lang = _lang(item.get("metadata")) or UNKNOWN_LANG
    if isinstance(raw, str):  # the usual block: "- text\n- text\n"
        rows = [(line.strip()[1:].strip(), None) for line in raw.splitlines() if line.strip().startswith("-")]
    elif isinstance(raw, list):  # - text: ...\n  metadata: {...}
        rows = [(e.get("text"), e.get("metadata")) if isinstance(e, dict) else (e, None) for e in raw]
    else:
        raise StudentError(f"{where}: `examples` must be a block of `- text` lines or a list of `text:` items.")
    examples = []
    for text, metadata in rows:
        if not isinstance(text, str):
            raise StudentError(f"{where}: example {text!r} is not text.")
        text = _ENTITY.sub(lambda m: m.group("text"), text).strip()
        if text:
            examples.append(RouteExample(text, intent.strip(), _lang(metadata) or default_lang))
    return examples


def _lang(metadata: Any) -> Optional[str]:
    if isinstance(metadata, dict):
        for key in ("lang", "language"):
            if isinstance(metadata.get(key), str) and metadata[key].strip():
                return metadata[key].strip()
    return None


def misclassified(
    examples: Sequence[RouteExample], labels: Sequence[str], probabilities: Any
) -> List[Dict[str, Any]]:
    """Rows of Rasa's ``intent_errors.json`` for the wrongly predicted examples (plus ``lang``).

    Args:
        examples: the test examples.
        labels: the router's labels, the columns of ``probabilities``.
        probabilities: array (len(examples), len(labels)).

    Returns:
        ``[{"text", "intent", "intent_prediction": {"name", "confidence"}, "lang"}]`` in the
        examples' order, as Rasa writes them.
    """
    errors = []
    for example, row in zip(examples, probabilities):
        best = int(row.argmax())
        if labels[best] != example.label:
            errors.append({
                "text": example.text,
                "intent": example.label,
                "intent_prediction": {"name": labels[best], "confidence": float(row[best])},
                "lang": example.lang,
            })
    return errors


def write_json(rows: Any, path: Union[str, Path]) -> Path:
    """Write ``rows`` as indented UTF-8 JSON (parent directories created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
