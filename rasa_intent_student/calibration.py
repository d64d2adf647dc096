"""The router's model: class-balanced multinomial logistic regression in numpy form, with temperature scaling.

``RouteClassifier``, ``rasa-intent-student route`` and ``evaluate`` all fit it here, so they agree.
"""
import inspect
import logging
from typing import List, NamedTuple, Optional, Sequence

import numpy as np

logger = logging.getLogger(__name__)

# Bounds of the fitted temperature: far outside these the folds were too small to trust.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 20.0


class LinearModel(NamedTuple):
    """softmax((x @ weights.T + bias) / temperature) over ``labels``.

    Attributes:
        weights: float32 array of shape (k, dim).
        bias: float32 array of shape (k,).
        labels: the k intent names, in column order.
        temperature: divides the logits; fitted on held-out folds.
    """

    weights: np.ndarray
    bias: np.ndarray
    labels: List[str]
    temperature: float = 1.0

    def logits(self, x: np.ndarray) -> np.ndarray:
        """x: (n, dim) -> (n, k)."""
        return x.astype(np.float32) @ self.weights.T + self.bias

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """x: (n, dim) -> probabilities of shape (n, k)."""
        return softmax(self.logits(x) / self.temperature)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_linear(
    x: np.ndarray,
    y: np.ndarray,
    labels: Sequence[str],
    c: float,
    max_iter: int,
    random_state: int,
) -> LinearModel:
    """Fit class-balanced multinomial logistic regression; y holds indices into ``labels``."""
    from sklearn.linear_model import LogisticRegression

    k, dim = len(labels), x.shape[1]
    if k == 1:
        return LinearModel(np.zeros((1, dim), np.float32), np.zeros(1, np.float32), list(labels))
    options = dict(C=c, max_iter=max_iter, class_weight="balanced", solver="lbfgs", random_state=random_state)
    if "multi_class" in inspect.signature(LogisticRegression).parameters:
        # Rasa's pin (scikit-learn < 1.2) needs it said; newer releases are multinomial already and dropped it.
        options["multi_class"] = "multinomial"
    clf = LogisticRegression(**options)
    clf.fit(x, y)
    weights, bias = clf.coef_, clf.intercept_
    if k == 2:
        # sklearn keeps one row for two classes and scores them as [-z, z].
        weights, bias = np.vstack([-weights, weights]), np.concatenate([-bias, bias])
    return LinearModel(weights.astype(np.float32), bias.astype(np.float32), list(labels))


def nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    probs = softmax(logits / temperature)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None))))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimizes the negative log-likelihood of held-out logits (n, k)."""
    from scipy.optimize import minimize_scalar

    result = minimize_scalar(
        lambda log_t: nll(logits, y, float(np.exp(log_t))),
        bounds=(np.log(MIN_TEMPERATURE), np.log(MAX_TEMPERATURE)),
        method="bounded",
    )
    return float(np.exp(result.x))


def out_of_fold_logits(
    x: np.ndarray, y: np.ndarray, labels: Sequence[str], folds: int, c: float, max_iter: int, random_state: int
) -> Optional[np.ndarray]:
    """Logits (n, k) of each example from a model that did not see it; None when a class is too small."""
    from sklearn.model_selection import StratifiedKFold

    folds = min(folds, int(np.bincount(y, minlength=len(labels)).min()))
    if len(labels) < 2 or folds < 2:
        return None
    logits = np.zeros((len(y), len(labels)), dtype=np.float32)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    for train_idx, test_idx in splitter.split(x, y):
        # A fold may lack a class; fit on the classes present and leave the others at -inf.
        present = np.unique(y[train_idx])
        remap = {old: new for new, old in enumerate(present)}
        model = fit_linear(x[train_idx], np.array([remap[v] for v in y[train_idx]]), [labels[i] for i in present],
                           c, max_iter, random_state)
        fold_logits = np.full((len(test_idx), len(labels)), -1e4, dtype=np.float32)
        fold_logits[:, present] = model.logits(x[test_idx])
        logits[test_idx] = fold_logits
    return logits


def fit_calibrated(
    x: np.ndarray, y: np.ndarray, labels: Sequence[str], c: float, max_iter: int, random_state: int,
    folds: Optional[int],
) -> LinearModel:
    """``fit_linear`` on all of ``x``, with its temperature fitted on out-of-fold logits (``folds``; None: none).

    The temperature stays 1.0 when calibration is off or a class has too few examples for two folds.
    """
    model = fit_linear(x, y, labels, c, max_iter, random_state)
    held_out = out_of_fold_logits(x, y, labels, folds, c, max_iter, random_state) if folds else None
    if folds and held_out is None:
        logger.info("Too few examples per intent to calibrate; confidences are uncalibrated.")
    return model._replace(temperature=fit_temperature(held_out, y) if held_out is not None else 1.0)
