"""Latency percentiles, timing loop and the per-model subprocess measurement."""
import pytest

from rasa_intent_student.evaluation.benchmark import measure_in_subprocess, peak_rss_mb, percentiles, time_calls


def test_percentiles_by_hand():
    # numpy linear interpolation over 1..10: position q/100 * 9
    assert percentiles(list(range(1, 11))) == pytest.approx({"p50": 5.5, "p90": 9.1, "p99": 9.91})
    assert percentiles([3.0]) == {"p50": 3.0, "p90": 3.0, "p99": 3.0}
    assert percentiles([4, 1, 3, 2], qs=(0, 100)) == {"p0": 1.0, "p100": 4.0}


def test_percentiles_reject_empty_and_out_of_range():
    with pytest.raises(ValueError, match="No timings"):
        percentiles([])
    with pytest.raises(ValueError, match="101"):
        percentiles([1.0], qs=(101,))


def test_time_calls_counts_warmup_and_cycles_texts():
    seen = []
    timings = time_calls(seen.append, ["a", "b", "c"], runs=5, warmup=2)
    assert len(timings) == 5 and all(t >= 0 for t in timings)
    assert seen == ["a", "b", "a", "b", "c", "a", "b"]
    with pytest.raises(ValueError, match="No texts"):
        time_calls(seen.append, [], runs=1)


def test_peak_rss_is_plausible():
    assert 5 < peak_rss_mb() < 100_000


def test_measure_in_subprocess(student_dir):
    texts = ["book a table", "¿qué pedí ayer?", "안녕", "what did I order last week?"]
    speed = measure_in_subprocess("s", student_dir, texts, runs=8, batch_size=2, threads=1)
    assert speed.name == "s" and speed.threads == 1 and speed.batch_size == 2
    assert speed.model_mb == pytest.approx((student_dir / "model.onnx").stat().st_size / 1e6)
    assert 0 < speed.latency_ms["p50"] <= speed.latency_ms["p90"] <= speed.latency_ms["p99"]
    assert speed.throughput > 0 and speed.peak_rss_mb > 10


def test_measure_in_subprocess_reports_a_broken_model(tmp_path):
    with pytest.raises(ValueError, match="Benchmarking bad"):
        measure_in_subprocess("bad", tmp_path, ["x"], runs=1)
