"""TeacherFidelityEvaluator: how closely a student's embeddings match its teacher's.

Modelled on sentence-transformers' ``MSEEvaluator``: the teacher embeddings are
computed once at construction, and each call scores one student on the same texts.
"""
from typing import Dict, List, Optional, Protocol, Sequence

import numpy as np

from rasa_intent_student.pooling import normalize
from rasa_intent_student.errors import StudentError


class Encoder(Protocol):
    def encode(self, texts: List[str], batch_size: int = ...) -> np.ndarray: ...


def fidelity_scores(student: np.ndarray, teacher: np.ndarray) -> Dict[str, float]:
    """MSE and mean/min cosine between row-aligned float arrays of shape (n, dim)."""
    if student.shape != teacher.shape:
        raise StudentError(
            f"Student embeddings {student.shape} and teacher embeddings {teacher.shape} differ in shape; "
            "fidelity needs a student with the teacher's dim, on the same texts."
        )
    cosines = (normalize(student) * normalize(teacher)).sum(axis=1)
    return {
        "mse": float(np.mean((student.astype(np.float64) - teacher) ** 2)),
        "cosine": float(cosines.mean()),
        "min_cosine": float(cosines.min()),
    }


def raw_embeddings(encoder: Encoder, texts: List[str]) -> np.ndarray:
    """``encoder.encode(texts)`` as the network computes it: a student with language offsets keeps them, so that
    fidelity compares the student's own embeddings with the teacher's."""
    if getattr(encoder, "language_offsets", None) is not None:
        return encoder.encode(texts, language_neutral=False)
    return encoder.encode(texts)


class TeacherFidelityEvaluator:
    """Scores a student's raw embeddings (``raw_embeddings``) against fixed teacher embeddings.

    Args:
        texts: the sentences to compare on.
        teacher: anything with ``encode(texts) -> (n, dim)``; or pass ``teacher_embeddings``.
        teacher_embeddings: precomputed float array of shape (n, dim).
        name: prefix of the returned keys.
    """

    primary_metric = "cosine"

    def __init__(
        self,
        texts: Sequence[str],
        teacher: Optional[Encoder] = None,
        teacher_embeddings: Optional[np.ndarray] = None,
        name: str = "",
    ) -> None:
        self.texts = list(texts)
        if not self.texts:
            raise StudentError("TeacherFidelityEvaluator needs at least one text.")
        if (teacher is None) == (teacher_embeddings is None):
            raise StudentError("Pass exactly one of teacher (an encoder) or teacher_embeddings (an array).")
        embeddings = raw_embeddings(teacher, self.texts) if teacher is not None else np.asarray(teacher_embeddings)
        if len(embeddings) != len(self.texts):
            raise StudentError(f"{len(embeddings)} teacher embeddings for {len(self.texts)} texts; they must match.")
        self.teacher_embeddings = embeddings.astype(np.float32)
        self.name = name
        if name:
            self.primary_metric = f"{name}_{TeacherFidelityEvaluator.primary_metric}"

    def __call__(self, student: Encoder) -> Dict[str, float]:
        """Returns {"mse", "cosine", "min_cosine"}, prefixed with ``name_`` when a name is set."""
        scores = fidelity_scores(raw_embeddings(student, self.texts), self.teacher_embeddings)
        prefix = f"{self.name}_" if self.name else ""
        return {prefix + key: value for key, value in scores.items()}
