"""Metric code on small cases checked by hand."""
import numpy as np
import pytest

from rasa_intent_student.evaluation.metrics import (
    accuracy,
    confusion_matrix,
    expected_calibration_error,
    group_indices,
    macro_f1,
    paired_bootstrap,
    per_class_scores,
)
from rasa_intent_student.errors import StudentError

# 6 examples; "other" is never predicted.
Y_TRUE = ["action", "action", "recall", "recall", "other", "other"]
Y_PRED = ["action", "recall", "recall", "recall", "action", "recall"]


def test_accuracy():
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(3 / 6)
    assert accuracy(["a"], ["a"]) == 1.0


def test_confusion_matrix_rows_are_truth_columns_predictions():
    m = confusion_matrix(Y_TRUE, Y_PRED, labels=["action", "recall", "other"])
    assert m.tolist() == [[1, 1, 0], [0, 2, 0], [1, 1, 0]]
    assert m.dtype == np.int64


def test_confusion_matrix_rejects_label_outside_labels():
    with pytest.raises(ValueError, match=r"\['other'\]"):
        confusion_matrix(Y_TRUE, Y_PRED, labels=["action", "recall"])


def test_per_class_scores_by_hand():
    s = per_class_scores(Y_TRUE, Y_PRED)
    # action: predicted 2 (1 right), true 2 -> P=1/2, R=1/2, F1=1/2
    assert s["action"] == pytest.approx((0.5, 0.5, 0.5, 2))
    # recall: predicted 4 (2 right), true 2 -> P=1/2, R=1, F1=2/3
    assert s["recall"] == pytest.approx((0.5, 1.0, 2 / 3, 2))
    # other: never predicted -> precision 0 (0/0), recall 0, F1 0
    assert s["other"] == pytest.approx((0.0, 0.0, 0.0, 2))


def test_macro_f1_counts_a_class_never_predicted_as_zero():
    assert macro_f1(Y_TRUE, Y_PRED) == pytest.approx((0.5 + 2 / 3 + 0.0) / 3)


def test_macro_f1_matches_scikit_learn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    labels = ["action", "recall", "other"]
    y_true = list(rng.choice(labels, 50))
    y_pred = list(rng.choice(labels[:2], 50))
    assert macro_f1(y_true, y_pred) == pytest.approx(f1_score(y_true, y_pred, average="macro"))


def test_perfect_and_mismatched_lengths():
    assert macro_f1(["a", "b"], ["a", "b"]) == 1.0
    with pytest.raises(ValueError, match="same length"):
        accuracy(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        accuracy([], [])


def test_group_indices_keeps_first_seen_order():
    assert group_indices(["ko", "en", "ko", "ja"]) == {"ko": [0, 2], "en": [1], "ja": [3]}


def test_expected_calibration_error():
    rng = np.random.default_rng(2)
    logits = rng.normal(scale=2.0, size=(20000, 3))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=p) for p in probs])
    assert expected_calibration_error(probs, y) < 0.02  # labels drawn from the probabilities
    overconfident = np.eye(3)[probs.argmax(axis=1)]
    hits = (probs.argmax(axis=1) == y).mean()
    assert expected_calibration_error(overconfident, y) == pytest.approx(1 - hits)


def test_paired_bootstrap_interval_holds_zero_only_when_the_items_cannot_tell():
    same = paired_bootstrap([1, 0, 1, 1], [1, 0, 1, 1])
    assert tuple(same) == (0.0, 0.0, 0.0)
    shifted = paired_bootstrap([0.5, 0.7, 0.9], [0.4, 0.6, 0.8])
    assert shifted.mean == pytest.approx(0.1) and shifted.low == pytest.approx(0.1) and shifted.high == pytest.approx(0.1)
    rng = np.random.default_rng(1)
    base = (rng.random(60) < 0.85).astype(float)
    flips = base.copy()
    flips[np.flatnonzero(base == 0)[:2]] = 1.0  # 2 more of 60 facts found: +0.033
    small = paired_bootstrap(flips, base)
    assert small.mean == pytest.approx(2 / 60) and small.low <= 0.0 < small.high  # 2 facts are within the noise
    many = paired_bootstrap(np.tile(flips, 20), np.tile(base, 20))  # the same gain over 1,200 facts is not
    assert many.low > 0.0 and many.mean == pytest.approx(2 / 60)


def test_paired_bootstrap_refuses_unpaired_scores():
    with pytest.raises(StudentError, match=r"equal-length.*\(3,\).*\(2,\)"):
        paired_bootstrap([1, 0, 1], [1, 0])
    with pytest.raises(StudentError, match="non-empty"):
        paired_bootstrap([], [])
