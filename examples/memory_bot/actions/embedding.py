"""Sentence embeddings for memory search: the student's vectors, compared after centering.

Student vectors share a large common component (any two sentences score about
0.9 cosine), so raw cosine barely separates related from unrelated events.
Subtracting the mean vector of a multilingual reference sample (the package's
route examples) removes it: centered cosine is about 0 for an average pair of
sentences and clearly positive for related ones, which makes one threshold
meaningful across models.
"""
import logging
from typing import List, Optional

import numpy as np

logger = logging.getLogger(__name__)

# Reference texts per language for the mean vector; 32 x 18 languages estimate it
# to within 0.001 cosine of the mean over all route examples, in a few seconds.
REFERENCE_PER_LANGUAGE = 32


def reference_texts(per_language: int = REFERENCE_PER_LANGUAGE) -> List[str]:
    """Evenly spaced route training texts of every shipped language."""
    from rasa_intent_student.routes import available_languages, load_routes

    texts: List[str] = []
    for lang in available_languages("train"):
        rows = load_routes("train", [lang])
        step = max(1, len(rows) // per_language)
        texts.extend(r.text for r in rows[::step][:per_language])
    return texts


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

        encoder = StudentEncoder.load(model_dir)
        texts = reference_texts()
        if not texts:
            logger.warning("No route examples found; memory search falls back to plain cosine.")
            return cls(encoder, np.zeros(encoder.dim, np.float32))
        return cls(encoder, encoder.encode(texts).mean(axis=0))

    def embed(self, text: str) -> np.ndarray:
        """The student's sentence embedding of ``text``: float32 of shape (dim,), stored as is."""
        return self.encoder.encode([text])[0]
