"""TeacherFidelityEvaluator and the rasa-free logistic-regression router."""
import numpy as np
import pytest

from rasa_intent_student.evaluation.fidelity import TeacherFidelityEvaluator, fidelity_scores
from rasa_intent_student.evaluation.router import LogisticRouter


class Table:
    """A fixed text -> vector encoder."""

    def __init__(self, vectors):
        self.vectors = vectors

    def encode(self, texts, batch_size=32):
        return np.array([self.vectors[t] for t in texts], dtype=np.float32)


def test_fidelity_by_hand():
    teacher = np.array([[1.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    student = np.array([[0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    scores = fidelity_scores(student, teacher)
    assert scores["cosine"] == pytest.approx(0.5)  # cosines 0 and 1
    assert scores["min_cosine"] == pytest.approx(0.0)
    assert scores["mse"] == pytest.approx((1 + 1 + 0 + 1) / 4)


def test_evaluator_primary_metric_and_identity():
    teacher = Table({"a": [1.0, 0.0], "b": [0.6, 0.8]})
    evaluator = TeacherFidelityEvaluator(["a", "b"], teacher=teacher, name="dev")
    scores = evaluator(teacher)
    assert evaluator.primary_metric == "dev_cosine"
    assert scores == pytest.approx({"dev_mse": 0.0, "dev_cosine": 1.0, "dev_min_cosine": 1.0})


def test_evaluator_rejects_wrong_dim_and_ambiguous_teacher():
    evaluator = TeacherFidelityEvaluator(["a"], teacher_embeddings=np.ones((1, 3)))
    with pytest.raises(ValueError, match="differ in shape"):
        evaluator(Table({"a": [1.0, 0.0]}))
    with pytest.raises(ValueError, match="exactly one"):
        TeacherFidelityEvaluator(["a"])


def test_router_separates_and_orders_probabilities():
    rng = np.random.default_rng(0)
    centers = {"action": [3, 0, 0], "recall": [0, 3, 0], "other": [0, 0, 3]}
    labels = [label for label in centers for _ in range(10)]
    x = np.array([centers[label] for label in labels]) + rng.normal(0, 0.3, (30, 3))
    router = LogisticRouter().fit(x, labels)
    assert router.labels == ["action", "other", "recall"]
    proba = router.predict_proba(np.array([[0, 3, 0]]))
    assert proba.shape == (1, 3) and proba.sum() == pytest.approx(1.0)
    assert router.predict(np.array([[3, 0, 0], [0, 3, 0], [0, 0, 3]])) == ["action", "recall", "other"]


def test_router_errors():
    with pytest.raises(ValueError, match="at least two distinct labels"):
        LogisticRouter().fit(np.zeros((2, 2)), ["a", "a"])
    with pytest.raises(ValueError, match="not fitted"):
        LogisticRouter().predict(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="C=0"):
        LogisticRouter(C=0)
