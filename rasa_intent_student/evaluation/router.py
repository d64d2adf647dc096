"""A rasa-free router: multinomial logistic regression on frozen sentence embeddings.

It is what ``evaluate`` and the quality benchmark train on top of an encoder;
the Rasa ``RouteClassifier`` plays the same role inside a Rasa pipeline.
"""
from typing import List, Sequence

import numpy as np

from rasa_intent_student.constants import EVAL_ROUTER_C, EVAL_ROUTER_MAX_ITER


class LogisticRouter:
    """Multinomial logistic regression over embeddings.

    Args:
        C: inverse L2 strength; embeddings are unit vectors, so a fairly weak
            penalty (C > 1) is needed to separate close routes.
        max_iter: L-BFGS iterations.
        seed: random state, for repeatable fits.
    """

    def __init__(self, C: float = EVAL_ROUTER_C, max_iter: int = EVAL_ROUTER_MAX_ITER, seed: int = 0) -> None:
        if C <= 0:
            raise ValueError(f"C={C} is invalid; use a positive number (larger = weaker regularization).")
        self.C, self.max_iter, self.seed = float(C), int(max_iter), int(seed)
        self._model = None
        self.labels: List[str] = []

    def fit(self, embeddings: np.ndarray, labels: Sequence[str]) -> "LogisticRouter":
        """Fit on float array (n, dim) and n string labels; needs at least two distinct labels."""
        from sklearn.linear_model import LogisticRegression

        if len(embeddings) != len(labels):
            raise ValueError(f"{len(embeddings)} embeddings but {len(labels)} labels; they must match one to one.")
        distinct = sorted(set(labels))
        if len(distinct) < 2:
            raise ValueError(f"Training data has labels {distinct}; a router needs at least two distinct labels.")
        self._model = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.seed)
        self._model.fit(np.asarray(embeddings, dtype=np.float64), list(labels))
        self.labels = [str(c) for c in self._model.classes_]
        return self

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """Returns float array (n, len(self.labels)): route probabilities, columns in ``labels`` order."""
        if self._model is None:
            raise ValueError("The router is not fitted; call fit(embeddings, labels) first.")
        return self._model.predict_proba(np.asarray(embeddings, dtype=np.float64))

    def predict(self, embeddings: np.ndarray) -> List[str]:
        """The most probable label of each row."""
        proba = self.predict_proba(embeddings)
        return [self.labels[i] for i in proba.argmax(axis=1)]
