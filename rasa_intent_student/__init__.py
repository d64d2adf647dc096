"""rasa-intent-student: a tiny multilingual student encoder and Rasa components.

Importing the package imports neither torch nor rasa. The Rasa components are
reachable as ``rasa_intent_student.StudentFeaturizer`` and
``rasa_intent_student.RouteClassifier`` (loaded lazily, so that ``config.yml``
can name them) and the encoder as ``rasa_intent_student.StudentEncoder``.
"""
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "StudentEncoder",
    "StudentManifest",
    "StudentFeaturizer",
    "RouteClassifier",
]

_LAZY = {
    "StudentEncoder": "rasa_intent_student.encoder",
    "StudentManifest": "rasa_intent_student.manifest",
    "StudentFeaturizer": "rasa_intent_student.components.featurizer",
    "RouteClassifier": "rasa_intent_student.components.classifier",
}


def __getattr__(name: str) -> Any:
    # Lazy so that `import rasa_intent_student` stays light (no rasa, no onnxruntime).
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rasa_intent_student' has no attribute '{name}'")
