"""The router's logistic regression and its temperature scaling against scikit-learn and known answers."""
import numpy as np
import pytest

from rasa_intent_student.calibration import LinearModel, fit_linear, fit_temperature, out_of_fold_logits, softmax
from rasa_intent_student.evaluation.metrics import expected_calibration_error


def synthetic(n=600, k=3, dim=16, noise=1.5, seed=0):
    """n points around k random centers; returns (x float32 (n, dim), y (n,))."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, dim))
    y = rng.integers(0, k, size=n)
    x = centers[y] + rng.normal(scale=noise, size=(n, dim))
    return x.astype(np.float32), y


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(1)
    true_logits = rng.normal(scale=3.0, size=(5000, 3))
    y = np.array([rng.choice(3, p=p) for p in softmax(true_logits)])
    # Logits that are 2.5x overconfident need temperature 2.5.
    assert fit_temperature(true_logits * 2.5, y) == pytest.approx(2.5, rel=0.1)


@pytest.mark.parametrize("k", [2, 3])
def test_numpy_model_matches_sklearn(k):
    from sklearn.linear_model import LogisticRegression

    x, y = synthetic(k=k)
    model = fit_linear(x, y, [str(i) for i in range(k)], c=1.0, max_iter=1000, random_state=0)
    reference = LogisticRegression(C=1.0, max_iter=1000, class_weight="balanced", multi_class="multinomial").fit(x, y)
    assert model.weights.shape == (k, x.shape[1])
    np.testing.assert_allclose(model.predict_proba(x), reference.predict_proba(x), atol=1e-4)


def test_calibration_lowers_error_of_an_overfit_model():
    x, y = synthetic(n=3200, dim=100, noise=4.0, seed=3)
    (x, x_test), (y, y_test) = np.split(x, [200]), np.split(y, [200])
    labels = ["a", "b", "c"]
    model = fit_linear(x, y, labels, c=1e4, max_iter=2000, random_state=0)
    held_out = out_of_fold_logits(x, y, labels, folds=5, c=1e4, max_iter=2000, random_state=0)
    calibrated = model._replace(temperature=fit_temperature(held_out, y))
    assert calibrated.temperature > 2.0  # 200 points in 100 dims, weak regularization: overconfident
    raw_ece = expected_calibration_error(model.predict_proba(x_test), y_test)
    assert expected_calibration_error(calibrated.predict_proba(x_test), y_test) < raw_ece / 2


def test_out_of_fold_needs_two_examples_per_class():
    x, y = synthetic(n=5)
    y = np.array([0, 0, 1, 1, 2])
    assert out_of_fold_logits(x, y, ["a", "b", "c"], 5, 1.0, 100, 0) is None


def test_linear_model_is_plain_arrays():
    model = LinearModel(np.eye(2, dtype=np.float32), np.zeros(2, np.float32), ["a", "b"], temperature=2.0)
    np.testing.assert_allclose(model.predict_proba(np.array([[1.0, 0.0]])), softmax(np.array([[0.5, 0.0]])))
