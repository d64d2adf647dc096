"""A tiny end-to-end ``rasa-intent-student evaluate`` with the student under test."""
import json

import pytest

from rasa_intent_student.cli import main

TRAIN = [
    ("book a table for two", "action", "en"), ("cancel my order", "action", "en"),
    ("set an alarm for 6 am", "action", "en"), ("reserva una mesa", "action", "es"),
    ("what did I order last week?", "recall", "en"), ("when is my dentist appointment?", "recall", "en"),
    ("what did we talk about yesterday?", "recall", "en"), ("¿qué pedí ayer?", "recall", "es"),
    ("hi!", "other", "en"), ("thanks a lot", "other", "en"), ("tell me a joke", "other", "en"), ("hola", "other", "es"),
]
TEST = [
    ("order a pizza", "action", "en"), ("what did I buy?", "recall", "en"), ("hello", "other", "en"),
    ("cancela la reserva", "action", "es"), ("¿cuándo es mi cita?", "recall", "es"), ("gracias", "other", "es"),
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps({"text": t, "label": l, "lang": g}, ensure_ascii=False) + "\n" for t, l, g in rows), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    return write_jsonl(tmp_path / "train.jsonl", TRAIN), write_jsonl(tmp_path / "test.jsonl", TEST)


def test_evaluate_prints_table_and_json_last_line(files, student_dir, tmp_path, capsys):
    train, test = files
    plots = tmp_path / "plots"
    code = main(["evaluate", "--data", str(test), "--train", str(train), "--model", str(student_dir),
                 "--json", "--plots", str(plots), "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "true \\ predicted" in out and "worst language" in out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["n"] == 6
    assert 0.0 <= result["accuracy"] <= 1.0 and 0.0 <= result["macro_f1"] <= 1.0
    assert set(result["per_language"]) == {"en", "es"}
    assert result["per_language"]["es"]["n"] == 3
    assert sum(map(sum, result["confusion"])) == 6
    assert sorted(p.name for p in plots.iterdir()) == ["confusion_matrix.png", "per_language_macro_f1.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in plots.iterdir())


def test_evaluate_rejects_label_unseen_in_training(files, student_dir, tmp_path, capsys):
    train, test = files
    no_recall = write_jsonl(tmp_path / "no_recall.jsonl", [r for r in TRAIN if r[1] != "recall"])
    code = main(["evaluate", "--data", str(test), "--train", str(no_recall), "--model", str(student_dir)])
    err = capsys.readouterr().err
    assert code == 1
    assert "['recall']" in err and "['action', 'other']" in err


def test_evaluate_reports_malformed_line(files, student_dir, tmp_path, capsys):
    train, _ = files
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hi", "label": "other", "lang": "en"}\nnot json\n', encoding="utf-8")
    code = main(["evaluate", "--data", str(bad), "--train", str(train), "--model", str(student_dir)])
    assert code == 1
    assert "bad.jsonl:2" in capsys.readouterr().err
