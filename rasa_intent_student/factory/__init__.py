"""The student factory: teacher -> pruned, quantized ONNX student. Needs the [factory] extra.

torch and friends are imported inside the factory functions, not here, but
their absence is reported at import time with the install hint.
"""
import importlib.util

_REQUIRED = ("torch", "transformers", "sentence_transformers", "onnx", "onnxruntime", "safetensors", "wordfreq")
_missing = [name for name in _REQUIRED if importlib.util.find_spec(name) is None]
if _missing:
    raise ImportError(
        f"The student factory needs {_missing}, which are not installed. "
        'Run: pip install "rasa-intent-student[factory]" (or use .venv-factory: make setup).'
    )

from rasa_intent_student.factory.build import BuildConfig, build_student, build_summary  # noqa: E402

__all__ = ["BuildConfig", "build_student", "build_summary"]
