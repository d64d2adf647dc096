"""Sentence embeddings for memory search: the student's vectors, compared after centering.

Student vectors share a large common component (any two sentences score about
0.9 cosine), so raw cosine barely separates related from unrelated events.
Subtracting the mean vector of a multilingual reference sample (the package's
route examples) removes it: centered cosine is about 0 for an average pair of
sentences and clearly positive for related ones, which makes one threshold
meaningful across models.
"""
import logging
from typing import Optional

import numpy as np

logger = logging.getLogger(__name__)


class MemoryEncoder:
    """A StudentEncoder plus the reference mean that memory search subtracts.

    Attributes:
        encoder: the student.
        center: float32 array of shape (dim,); zeros when no reference texts exist.
    """

    def __init__(self, encoder, center: np.ndarray) -> None:
        self.encoder = encoder
        self.center = np.asarray(center, dtype=np.float32)

    @classmethod
    def load(cls, model_dir: Optional[str] = None) -> "MemoryEncoder":
        """Load the student (the package default when None) and compute its reference mean."""
        from rasa_intent_student.encoder import StudentEncoder
        from rasa_intent_student.routes import reference_texts

        encoder = StudentEncoder.load(model_dir)
        texts = reference_texts()  # 32 per language: the mean is within 0.001 cosine of all route examples
        if not texts:
            logger.warning("No route examples found; memory search falls back to plain cosine.")
            return cls(encoder, np.zeros(encoder.dim, np.float32))
        return cls(encoder, encoder.encode(texts).mean(axis=0))

    def embed(self, text: str) -> np.ndarray:
        """The student's sentence embedding of ``text``: float32 of shape (dim,), stored as is."""
        return self.encoder.encode([text])[0]
