"""A rasa-free router: the RouteClassifier's logistic regression on frozen sentence embeddings.

``evaluate`` and the quality benchmark train it on top of an encoder. It fits
the same model, with the same defaults, as ``RouteClassifier`` inside a Rasa
pipeline (``calibration.fit_linear``), so ``evaluate`` measures
what a bot would get.
"""
from typing import List, Optional, Sequence

import numpy as np

from rasa_intent_student.calibration import LinearModel, fit_linear
from rasa_intent_student.constants import ROUTER_C, ROUTER_MAX_ITER
from rasa_intent_student.errors import StudentError


class LogisticRouter:
    """Class-balanced multinomial logistic regression over embeddings.

    Args:
        C: inverse L2 strength; embeddings are unit vectors, so a weak penalty
            (C > 1) is needed to separate close routes.
        max_iter: L-BFGS iterations.
        seed: random state, for repeatable fits.
    """

    def __init__(self, C: float = ROUTER_C, max_iter: int = ROUTER_MAX_ITER, seed: int = 0) -> None:
        if C <= 0:
            raise StudentError(f"C={C} is invalid; use a positive number (larger = weaker regularization).")
        self.C, self.max_iter, self.seed = float(C), int(max_iter), int(seed)
        self._model: Optional[LinearModel] = None

    @property
    def labels(self) -> List[str]:
        return list(self._model.labels) if self._model is not None else []

    def fit(self, embeddings: np.ndarray, labels: Sequence[str]) -> "LogisticRouter":
        """Fit on float array (n, dim) and n string labels; needs at least two distinct labels."""
        if len(embeddings) != len(labels):
            raise StudentError(f"{len(embeddings)} embeddings but {len(labels)} labels; they must match one to one.")
        distinct = sorted(set(labels))
        if len(distinct) < 2:
            raise StudentError(f"Training data has labels {distinct}; a router needs at least two distinct labels.")
        index = {label: i for i, label in enumerate(distinct)}
        y = np.array([index[label] for label in labels])
        self._model = fit_linear(np.asarray(embeddings, dtype=np.float64), y, distinct, self.C, self.max_iter, self.seed)
        return self

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """Returns float array (n, len(self.labels)): route probabilities, columns in ``labels`` order."""
        if self._model is None:
            raise StudentError("The router is not fitted; call fit(embeddings, labels) first.")
        return self._model.predict_proba(np.asarray(embeddings, dtype=np.float32))

    def predict(self, embeddings: np.ndarray) -> List[str]:
        """The most probable label of each row."""
        proba = self.predict_proba(embeddings)
        return [self.labels[i] for i in proba.argmax(axis=1)]
