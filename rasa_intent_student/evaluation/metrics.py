"""Classification metrics in plain numpy: accuracy, per-class F1, macro-F1, confusion matrix, calibration error.

They follow scikit-learn's definitions (a class that is never predicted has
precision 0 and so F1 0), without needing scikit-learn.
"""
from typing import Dict, Hashable, List, NamedTuple, Optional, Sequence, TypeVar

import numpy as np
from rasa_intent_student.errors import StudentError

K = TypeVar("K", bound=Hashable)


class ClassScores(NamedTuple):
    """Precision, recall and F1 of one class, and how many true examples it has."""

    precision: float
    recall: float
    f1: float
    support: int


def _check_lengths(y_true: Sequence[str], y_pred: Sequence[str]) -> None:
    if len(y_true) != len(y_pred):
        raise StudentError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}; they must be the same length.")
    if not y_true:
        raise StudentError("No examples to score: y_true is empty.")


def label_set(y_true: Sequence[str], y_pred: Sequence[str]) -> List[str]:
    """Sorted union of true and predicted labels (scikit-learn's default for ``labels``)."""
    return sorted(set(y_true) | set(y_pred))


def accuracy(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    """Fraction of positions where the prediction equals the truth."""
    _check_lengths(y_true, y_pred)
    return float(np.mean([t == p for t, p in zip(y_true, y_pred)]))


def confusion_matrix(y_true: Sequence[str], y_pred: Sequence[str], labels: Optional[Sequence[str]] = None) -> np.ndarray:
    """Counts of (true, predicted) pairs.

    Returns:
        int64 array of shape (k, k): row = true label, column = predicted label,
        in the order of ``labels`` (default: ``label_set``).
    """
    _check_lengths(y_true, y_pred)
    labels = list(labels) if labels is not None else label_set(y_true, y_pred)
    index = {label: i for i, label in enumerate(labels)}
    missing = sorted((set(y_true) | set(y_pred)) - set(index))
    if missing:
        raise StudentError(f"Labels {missing} occur in the data but not in labels={labels}; add them to labels.")
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        matrix[index[t], index[p]] += 1
    return matrix


def per_class_scores(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Optional[Sequence[str]] = None
) -> Dict[str, ClassScores]:
    """Precision, recall, F1 and support for each label (0.0 where a ratio is 0/0)."""
    labels = list(labels) if labels is not None else label_set(y_true, y_pred)
    matrix = confusion_matrix(y_true, y_pred, labels)
    true_positives = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0)  # column sums: how often each label was predicted
    actual = matrix.sum(axis=1)  # row sums: support
    scores = {}
    for i, label in enumerate(labels):
        precision = true_positives[i] / predicted[i] if predicted[i] else 0.0
        recall = true_positives[i] / actual[i] if actual[i] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores[label] = ClassScores(float(precision), float(recall), float(f1), int(actual[i]))
    return scores


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str], labels: Optional[Sequence[str]] = None) -> float:
    """Unweighted mean of per-class F1 over ``labels`` (default: every true or predicted label)."""
    scores = per_class_scores(y_true, y_pred, labels)
    return float(np.mean([s.f1 for s in scores.values()]))


def group_indices(keys: Sequence[K]) -> Dict[K, List[int]]:
    """Positions of each distinct key, keys in first-seen order."""
    groups: Dict[K, List[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return groups


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-1 confidence: the bin-weighted gap between confidence and accuracy.

    Args:
        probs: (n, k) predicted probabilities.
        y: (n,) true class indices.
    """
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


class Difference(NamedTuple):
    """A paired difference's mean and the bounds of its bootstrap interval."""

    mean: float
    low: float
    high: float


def paired_bootstrap(a: Sequence[float], b: Sequence[float], rounds: int = 10_000, level: float = 0.95,
                     seed: int = 0) -> Difference:
    """Mean of ``a - b`` over paired items and its percentile bootstrap interval (items resampled with replacement).

    The interval says how much the difference could move with other items of the same kind: where it holds 0,
    this test set does not tell the two apart.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise StudentError(f"paired_bootstrap needs two equal-length, non-empty score lists (one score per item, "
                           f"the same items in the same order); got shapes {a.shape} and {b.shape}.")
    diff = a - b
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, size=(rounds, diff.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Difference(float(diff.mean()), float(low), float(high))
