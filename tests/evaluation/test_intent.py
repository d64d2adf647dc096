"""IntentEvaluator / build_report: per-language grouping, JSON shape, label checks."""
import json

import pytest

from rasa_intent_student.evaluation.data import check_known_labels, load_examples
from rasa_intent_student.evaluation.intent import IntentEvaluator, build_report
from rasa_intent_student.evaluation.tables import format_intent_report
from rasa_intent_student.routes import RouteExample as E

EXAMPLES = [
    E("reserva una mesa", "action", "es"),
    E("¿qué pedí ayer?", "recall", "es"),
    E("hola", "other", "es"),
    E("주문 취소해", "action", "ko"),
    E("지난번 주문 뭐였지?", "recall", "ko"),
    E("안녕", "other", "ko"),
]
# es all right; ko: recall -> action, other -> action.
PREDICTIONS = ["action", "recall", "other", "action", "action", "action"]


def test_report_groups_by_language():
    report = build_report(EXAMPLES, PREDICTIONS, labels=["action", "other", "recall"])
    assert report.n == 6
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.per_language["es"] == {"n": 3, "accuracy": 1.0, "macro_f1": 1.0}
    # ko: action P=1/3 R=1 F1=1/2; recall and other never predicted -> 0
    assert report.per_language["ko"]["accuracy"] == pytest.approx(1 / 3)
    assert report.per_language["ko"]["macro_f1"] == pytest.approx(0.5 / 3)
    assert report.worst_language == "ko"
    assert report.confusion == [[2, 0, 0], [1, 1, 0], [1, 0, 1]]
    assert report.per_class["other"]["support"] == 2


def test_report_json_shape():
    data = json.loads(json.dumps(build_report(EXAMPLES, PREDICTIONS).to_dict()))
    assert isinstance(data["n"], int) and isinstance(data["accuracy"], float) and isinstance(data["macro_f1"], float)
    assert set(data["per_language"]) == {"es", "ko"}
    for scores in data["per_language"].values():
        assert set(scores) == {"n", "accuracy", "macro_f1"}
    assert set(data["per_class"]) == {"action", "recall", "other"}
    assert set(data["per_class"]["action"]) == {"precision", "recall", "f1", "support"}


def test_evaluator_returns_prefixed_floats_with_primary_metric():
    evaluator = IntentEvaluator(EXAMPLES, name="dev")
    predict = dict(zip([e.text for e in EXAMPLES], PREDICTIONS))
    metrics = evaluator(lambda texts: [predict[t] for t in texts])
    assert evaluator.primary_metric == "dev_macro_f1"
    assert metrics["dev_accuracy"] == pytest.approx(4 / 6)
    assert metrics["dev_macro_f1_es"] == 1.0
    assert evaluator.primary_metric in metrics


def test_table_has_every_section():
    text = format_intent_report(build_report(EXAMPLES, PREDICTIONS))
    for needle in ("macro-F1", "worst language", "ko (0.167)", "| es ", "true \\ predicted", "support"):
        assert needle in text


def test_unknown_label_lists_training_labels():
    with pytest.raises(ValueError) as info:
        check_known_labels(EXAMPLES, ["action", "other"])
    assert "['recall']" in str(info.value) and "['action', 'other']" in str(info.value)


def test_malformed_row_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"text": "hola", "label": "other", "lang": "es"}\n\n{"text": "hi", "label": "other"\n', encoding="utf-8"
    )
    with pytest.raises(ValueError, match=r"bad\.jsonl:3"):
        load_examples(path)


def test_directory_of_jsonl_and_missing_path(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "hola", "label": "other", "lang": "es"}\n', encoding="utf-8")
    (tmp_path / "b.jsonl").write_text('{"text": "안녕", "label": "other", "lang": "ko"}\n', encoding="utf-8")
    assert [e.lang for e in load_examples(tmp_path)] == ["es", "ko"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_examples(tmp_path / "nope.jsonl")
