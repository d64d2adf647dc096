"""Reference encoders for the benchmarks, as StudentEncoder directories under ``artifacts/``.

``bench`` compares the shipped INT8 student with its FP32 self and with the
12-layer teacher. Both are written here as ``model.onnx`` + ``tokenizer.json``
+ ``student.json`` so that every model is measured by the same runtime code::

    rasa-intent-student reference                  # teacher + student FP32
    rasa-intent-student reference --teacher-only   # teacher only (an installed package)
    rasa-intent-student reference --st DIR NAME    # also any local sentence-transformers model

Nothing is downloaded: the teacher is rebuilt offline (``e5-small-offline``)
and the FP32 student comes from the factory's work directory (``make model``).
"""
import logging
import shutil
from pathlib import Path

from rasa_intent_student.constants import (
    DEFAULT_MODEL_DIR,
    FACTORY_WORK_DIR,
    LANGUAGE_OFFSETS_FILE,
    MODEL_FILE,
    REFERENCE_STUDENT_FP32_DIR,
    TOKENIZER_FILE,
)
from rasa_intent_student.manifest import StudentManifest, library_versions, seal_student
from rasa_intent_student.errors import StudentError

logger = logging.getLogger(__name__)


def export_st_model(name: str, output: Path, work_dir: Path = FACTORY_WORK_DIR, max_seq_length: int = 128) -> Path:
    """Export a sentence-transformers model (``e5-small-offline`` or a local directory) as an FP32 StudentEncoder dir."""
    from rasa_intent_student.factory.export import export_onnx
    from rasa_intent_student.factory.teacher import load_teacher

    teacher = load_teacher(name, Path(work_dir))
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    export_onnx(teacher.model, output / MODEL_FILE, teacher.pooling)
    shutil.copyfile(teacher.tokenizer_path, output / TOKENIZER_FILE)
    config = teacher.model.config
    StudentManifest(
        dim=int(config.hidden_size),
        max_seq_length=max_seq_length,
        pooling=teacher.pooling,
        prefix=teacher.prefix,
        teacher=teacher.source,
        layers_kept=tuple(range(int(config.num_hidden_layers))),
        vocab_size=int(config.vocab_size),
        quantization="none",
        versions=library_versions("torch", "transformers", "onnx"),
        metrics={"reference": f"FP32 export of {teacher.source} for benchmarks"},
    ).save(output)
    seal_student(output)  # a damaged reference would skew every ratio to it
    logger.info("Wrote %s (%s, %d layers)", output, teacher.source, config.num_hidden_layers)
    return output


def export_student_fp32(output: Path = REFERENCE_STUDENT_FP32_DIR, work_dir: Path = FACTORY_WORK_DIR, student_dir: Path = DEFAULT_MODEL_DIR) -> Path:
    """The FP32 graph the shipped INT8 student was quantized from, next to the student's tokenizer and manifest.

    Raises:
        FileNotFoundError: the factory work directory has no FP32 graph (run ``make model`` first).
    """
    from rasa_intent_student.factory.build import FP32_ONNX

    fp32 = Path(work_dir) / FP32_ONNX
    if not fp32.is_file():
        raise FileNotFoundError(f"{fp32} not found: the FP32 student is a by-product of the build. Run `make model` first.")
    manifest = StudentManifest.load(student_dir)
    expected = (manifest.metrics.get("sizes") or {}).get("fp32")
    if expected and expected != fp32.stat().st_size:
        raise StudentError(
            f"{fp32} has {fp32.stat().st_size} bytes but {student_dir} was built from an FP32 graph of {expected} bytes; "
            "they come from different builds. Rebuild with `make model`."
        )
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(fp32, output / MODEL_FILE)
    shutil.copyfile(Path(student_dir) / TOKENIZER_FILE, output / TOKENIZER_FILE)
    (output / LANGUAGE_OFFSETS_FILE).unlink(missing_ok=True)
    # The INT8 student's checksums and offsets describe its own graph: the FP32 copy gets its own.
    manifest.replace(quantization="none", checksums={}, language_offsets=()).save(output)
    seal_student(output)
    if manifest.language_offsets:
        from rasa_intent_student.language_offsets import fit_student_offsets

        fit_student_offsets(output, manifest.language_offsets)
    return output

