import numpy as np

from rasa_intent_student.pooling import cls_pooling, mean_pooling, normalize


def test_mean_pooling_ignores_padding():
    tokens = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]], dtype=np.float32)  # (1, 3, 2)
    mask = np.array([[1, 1, 0]])
    np.testing.assert_allclose(mean_pooling(tokens, mask), [[2.0, 3.0]])


def test_mean_pooling_all_masked_row_is_zero_not_nan():
    tokens = np.ones((1, 2, 3), dtype=np.float32)
    out = mean_pooling(tokens, np.zeros((1, 2), dtype=np.int64))
    assert np.isfinite(out).all() and not out.any()


def test_cls_pooling_takes_first_token():
    tokens = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    np.testing.assert_array_equal(cls_pooling(tokens, np.ones((2, 3))), [[0, 1], [6, 7]])


def test_normalize_unit_rows_and_zero_rows():
    out = normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    assert out.dtype == np.float32
