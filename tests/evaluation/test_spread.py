"""The spread over training seeds, by hand, from a saved bench output."""
import json

import pytest

from rasa_intent_student.errors import StudentError
from rasa_intent_student.evaluation.spread import main, seed_spread


def protocols():
    # Ratios chosen so the figures are easy by hand; "mean" is the ratio of the means, as bench writes it.
    ratios = {
        "s0": {"route_dev": {"en": 1.00, "de": 0.90, "mean": 0.95}, "memory_xling": {"en": 0.80, "de": 0.70, "mean": 0.75}},
        "s1": {"route_dev": {"en": 1.00, "de": 0.96, "mean": 0.98}, "memory_xling": {"en": 0.80, "de": 0.70, "mean": 0.75}},
        "s2": {"route_dev": {"en": 1.00, "de": 0.93, "mean": 0.965}, "memory_xling": {"en": 0.86, "de": 0.70, "mean": 0.78}},
    }
    return {"protocols": ["route_dev", "memory_xling"], "reference": "teacher", "ratios": ratios}


def test_seed_spread_by_hand():
    spread = seed_spread(protocols(), ["s0", "s1", "s2"])
    route = spread["route_dev"]
    assert route["mean"] == pytest.approx(0.965)
    assert route["sd"] == pytest.approx(0.015)  # 0.95, 0.98, 0.965: deviations -0.015, +0.015, 0
    assert route["range"] == pytest.approx(0.03)
    assert route["language_sd_max"] == ("de", pytest.approx(0.03))  # en never moves
    assert route["language_sd_median"] == pytest.approx(0.015)  # median of 0 and 0.03
    assert route["worst_language"]["s1"] == (pytest.approx(0.96), "de")
    memory = spread["memory_xling"]
    assert memory["sd"] == pytest.approx(0.03 / 3 ** 0.5)  # 0.75, 0.75, 0.78
    assert memory["language_sd_max"][0] == "en"


def test_spread_names_what_is_missing():
    with pytest.raises(StudentError, match=r"missing \['s9'\].*Valid names in this output: \['s0', 's1', 's2'\]"):
        seed_spread(protocols(), ["s0", "s9"])
    with pytest.raises(StudentError, match="at least two"):
        seed_spread(protocols(), ["s0"])


def test_spread_reads_a_saved_bench_output(tmp_path, capsys):
    path = tmp_path / "bench.txt"
    path.write_text("progress and tables\n" + json.dumps({"protocols": protocols()}) + "\n", encoding="utf-8")
    assert main([str(path), "--runs", "s0", "s1", "s2"]) == 0
    table = capsys.readouterr().out
    assert "| route_dev " in table and "0.965 ± 0.015" in table and "de 0.900, de 0.960, de 0.930" in table
    (tmp_path / "empty.txt").write_text("no json\n", encoding="utf-8")
    with pytest.raises(StudentError, match="holds no JSON line"):
        main([str(tmp_path / "empty.txt"), "--runs", "s0", "s1"])
