"""The shipped route examples: ``data/routes/{split}/{lang}.jsonl``, read and validated."""
import json
from pathlib import Path
from typing import Iterable, List, NamedTuple, Optional, Union

from rasa_intent_student.constants import LANGUAGES, ROUTE_DATA_DIR, ROUTE_SPLITS, ROUTES
from rasa_intent_student.errors import StudentError

ROW_KEYS = ("text", "label", "lang")
# Texts per language of ``reference_texts`` (18 languages: 576 texts, whose mean embedding is
# within 0.001 cosine of the mean over every route example).
REFERENCE_PER_LANGUAGE = 32


class RouteExample(NamedTuple):
    """One labelled utterance (see docs/ROUTES.md)."""

    text: str
    label: str
    lang: str


def _parse_row(line: str, where: str, expected_lang: Optional[str]) -> RouteExample:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise StudentError(f"{where}: invalid JSON ({e.msg}). Each line must be one JSON object.") from e
    if not isinstance(row, dict):
        raise StudentError(f"{where}: expected a JSON object, got {type(row).__name__}.")
    if sorted(row) != sorted(ROW_KEYS):
        raise StudentError(f"{where}: keys {sorted(row)}; each row needs exactly {list(ROW_KEYS)}.")
    text, label, lang = row["text"], row["label"], row["lang"]
    if not isinstance(text, str) or not text.strip():
        raise StudentError(f"{where}: text {text!r} must be a non-empty string.")
    if label not in ROUTES:
        raise StudentError(f"{where}: unknown label {label!r}. Valid labels: {list(ROUTES)}.")
    if lang not in LANGUAGES:
        raise StudentError(f"{where}: unknown lang {lang!r}. Valid codes: {list(LANGUAGES)}.")
    if expected_lang is not None and lang != expected_lang:
        raise StudentError(f"{where}: lang {lang!r} in a file for {expected_lang!r}. Move the row or fix its lang.")
    return RouteExample(text, label, lang)


def read_jsonl(path: Union[str, Path], lang: Optional[str] = None) -> List[RouteExample]:
    """Read and validate one JSON Lines file of route examples (blank lines are skipped).

    Args:
        path: the file.
        lang: if given, every row must carry this language code.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a row is not valid JSON or has a wrong key, label or language;
            the message names the file and the 1-based line number.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Route data file {path} does not exist.")
    examples = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                examples.append(_parse_row(line, f"{path}:{number}", lang))
    return examples


def available_languages(split: str = "train", root: Optional[Union[str, Path]] = None) -> List[str]:
    """Language codes that have a file in ``split``, in ``LANGUAGES`` order."""
    directory = _split_dir(split, root)
    return [lang for lang in LANGUAGES if (directory / f"{lang}.jsonl").is_file()]


def load_routes(
    split: str = "train",
    languages: Optional[Iterable[str]] = None,
    root: Optional[Union[str, Path]] = None,
) -> List[RouteExample]:
    """Load the shipped route examples of one split.

    Args:
        split: one of ``ROUTE_SPLITS``.
        languages: ISO 639-1 codes to load; None loads every language that has a file.
        root: the data directory (default: the package's ``data/routes``).

    Returns:
        The examples, file by file in ``LANGUAGES`` order.

    Raises:
        ValueError: unknown split or language code, a bad row, or a row whose
            ``lang`` differs from its file's language.
        FileNotFoundError: a requested language has no file in this split.
    """
    directory = _split_dir(split, root)
    if languages is None:
        codes = available_languages(split, root)
    else:
        codes = check_languages([languages] if isinstance(languages, str) else languages)
    examples: List[RouteExample] = []
    for code in codes:
        path = directory / f"{code}.jsonl"
        if not path.is_file():
            raise FileNotFoundError(
                f"No route data for '{code}' in {directory}. Available: {available_languages(split, root)}."
            )
        examples.extend(read_jsonl(path, lang=code))
    return examples


def reference_texts(per_language: int = REFERENCE_PER_LANGUAGE) -> List[str]:
    """A fixed multilingual sample: ``per_language`` evenly spaced route training texts of every language."""
    texts: List[str] = []
    for lang in available_languages("train"):
        rows = load_routes("train", [lang])
        step = max(1, len(rows) // per_language)
        texts.extend(r.text for r in rows[::step][:per_language])
    return texts


def check_languages(codes: Iterable[str]) -> List[str]:
    """Return ``codes`` as a list if each is one of the 18 ``LANGUAGES``; else name the unknown ones."""
    codes = list(codes)
    unknown = [c for c in codes if c not in LANGUAGES]
    if unknown:
        raise StudentError(f"Unknown language codes {unknown}. Valid codes: {list(LANGUAGES)}.")
    return codes


def _split_dir(split: str, root: Optional[Union[str, Path]]) -> Path:
    if split not in ROUTE_SPLITS:
        raise StudentError(f"Unknown split {split!r}. Valid splits: {list(ROUTE_SPLITS)}.")
    return Path(root or ROUTE_DATA_DIR) / split
