"""What a build records about itself: the command, a distilled source's record, the CLI summary."""
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Sequence, Tuple

from rasa_intent_student.constants import DISTILL_RECORD_FILE, E5_OFFLINE_TEACHER
from rasa_intent_student.factory.e5_offline import E5_WEIGHTS_NOTE
from rasa_intent_student.factory.graph_report import graph_summary, latency_rows

if TYPE_CHECKING:
    from rasa_intent_student.factory.build import BuildConfig


def default_command(config: "BuildConfig") -> str:
    """The ``build`` command of ``config``'s main options (for builds not started from the command line)."""
    layers = " ".join(str(i) for i in config.layers)
    return (
        f"rasa-intent-student build --teacher {config.teacher} --output {config.output} "
        f"--layers {layers} --vocab-size {config.vocab_size or 0}"
    )


def record_distillation(
    metrics: Dict[str, Any], source_dir: Path, teacher: str, layers: Sequence[int]
) -> Tuple[str, Tuple[int, ...]]:
    """The teacher and layers the card names: the build source's, or, for a distilled source, the real teacher's.

    A distilled source directory holds ``distill.json``; it goes into ``metrics["distillation"]``,
    and the teacher figures in ``metrics`` become the original teacher's.
    """
    path = Path(source_dir) / DISTILL_RECORD_FILE
    if not path.is_file():
        return teacher, tuple(layers)
    record = json.loads(path.read_text(encoding="utf-8"))
    metrics["distillation"] = record
    metrics["build_source"] = "distilled FP32 student (full vocabulary)"
    metrics["teacher_layers"] = record.get("teacher_layers") or metrics["teacher_layers"]
    metrics["teacher_parameters"] = record.get("teacher_parameters") or metrics["teacher_parameters"]
    source = record["config"]["teacher"]
    metrics["teacher_weights"] = f"{E5_WEIGHTS_NOTE if source == E5_OFFLINE_TEACHER else source}; then distilled"
    return record["distilled_from"], tuple(record["layers"])


def build_summary(metrics: Dict[str, Any]) -> Sequence[Tuple[str, str]]:
    """(label, value) rows for the CLI table."""
    s, f = metrics["sizes"], metrics["fidelity"]
    unk = [v["unk_rate"] for v in metrics.get("unk_rate", {}).values() if v.get("unk_rate") is not None]
    return [
        ("parameters", f"{metrics['parameters']:,} (teacher {metrics['teacher_parameters']:,})"),
        ("FP32 ONNX", f"{s['fp32'] / 2**20:.1f} MiB"),
        ("INT8 ONNX", f"{s['int8'] / 2**20:.2f} MiB"),
        ("ONNX vs torch max |diff|", f"{f['onnx_fp32_max_abs_diff']:.1e}"),
        ("graph", graph_summary(metrics.get("graph", {}))),
        ("INT8 vs FP32 cosine (mean/min)", f"{f['int8_vs_fp32_cosine_mean']:.4f} / {f['int8_vs_fp32_cosine_min']:.4f}"),
        ("INT8 vs build-source cosine", f"{f['int8_vs_build_source_cosine_mean']:.4f}"),
        ("max unk rate (languages)", f"{max(unk):.3%}" if unk else "n/a"),
        ("build time", f"{metrics['build_seconds']:.0f} s"),
    ] + latency_rows(metrics.get("graph", {}))
