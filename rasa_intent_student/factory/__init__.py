"""The student factory: teacher -> pruned, quantized ONNX student. Needs the [factory] extra.

torch and friends are imported inside the factory functions, not here, but
their absence is reported at import time with the install hint.
"""
import importlib.util

from rasa_intent_student.errors import install_hint

_REQUIRED = ("torch", "transformers", "sentence_transformers", "onnx", "onnxruntime", "safetensors", "wordfreq")
_missing = [name for name in _REQUIRED if importlib.util.find_spec(name) is None]
if _missing:
    raise ImportError(
        f"The student factory needs {_missing}, which are not installed. "
        f"Run: {install_hint('factory')} (or use .venv-factory: make setup)."
    )

from rasa_intent_student.factory.build import BuildConfig, build_student  # noqa: E402
from rasa_intent_student.factory.build_record import build_summary  # noqa: E402

__all__ = ["BuildConfig", "build_student", "build_summary"]
