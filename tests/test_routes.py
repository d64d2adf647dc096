import json
from collections import Counter

import pytest

from rasa_intent_student.constants import LANGUAGES, ROUTES
from rasa_intent_student.routes import RouteExample, available_languages, load_routes, read_jsonl


def write_rows(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(r if isinstance(r, str) else json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_shipped_data_is_valid_and_covers_every_route():
    examples = load_routes("train")
    assert examples, "no shipped route data"
    assert set(e.label for e in examples) == set(ROUTES)
    for lang in available_languages("train"):
        counts = Counter(e.label for e in examples if e.lang == lang)
        assert min(counts[r] for r in ROUTES) >= 10, (lang, counts)
    assert load_routes("dev")


def test_language_filter_and_order(tmp_path):
    write_rows(tmp_path / "train" / "es.jsonl", [{"text": "hola", "label": "other", "lang": "es"}])
    write_rows(tmp_path / "train" / "en.jsonl", [{"text": "hi", "label": "other", "lang": "en"}])
    assert available_languages("train", root=tmp_path) == ["en", "es"]  # LANGUAGES order
    assert load_routes("train", root=tmp_path) == [
        RouteExample("hi", "other", "en"),
        RouteExample("hola", "other", "es"),
    ]
    assert load_routes("train", languages="es", root=tmp_path) == [RouteExample("hola", "other", "es")]


@pytest.mark.parametrize(
    "row, message",
    [
        ('{"text": "hi", "label": "other"\n', "invalid JSON"),
        ('["hi", "other", "en"]\n', "expected a JSON object"),
        ({"text": "hi", "label": "other"}, "keys"),
        ({"text": "hi", "label": "other", "lang": "en", "x": 1}, "keys"),
        ({"text": "  ", "label": "other", "lang": "en"}, "non-empty"),
        ({"text": "hi", "label": "greet", "lang": "en"}, "unknown label 'greet'"),
        ({"text": "hi", "label": "other", "lang": "xx"}, "unknown lang 'xx'"),
        ({"text": "hi", "label": "other", "lang": "es"}, "file for 'en'"),
    ],
)
def test_bad_row_names_file_and_line(tmp_path, row, message):
    good = {"text": "hi", "label": "other", "lang": "en"}
    path = write_rows(tmp_path / "train" / "en.jsonl", [good, "\n", row])
    with pytest.raises(ValueError, match=message) as info:
        load_routes("train", root=tmp_path)
    assert f"{path}:3" in str(info.value)


def test_read_jsonl_any_file(tmp_path):
    path = write_rows(tmp_path / "mine.jsonl", [{"text": "what did I buy?", "label": "recall", "lang": "en"}])
    assert read_jsonl(path) == [RouteExample("what did I buy?", "recall", "en")]
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        read_jsonl(tmp_path / "missing.jsonl")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="Unknown split 'test'"):
        load_routes("test")
    with pytest.raises(ValueError, match=r"Unknown language codes \['english'\]"):
        load_routes("train", languages=["english"])
    missing = next(lang for lang in LANGUAGES if lang != "en")
    write_rows(tmp_path / "train" / "en.jsonl", [{"text": "hi", "label": "other", "lang": "en"}])
    with pytest.raises(FileNotFoundError, match=f"No route data for '{missing}'"):
        load_routes("train", languages=[missing], root=tmp_path)
