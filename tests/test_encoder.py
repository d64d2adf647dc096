import time

import numpy as np
import pytest

from rasa_intent_student.encoder import StudentEncoder

SENTENCES = [
    "book a table for two at 7",
    "¿qué pedí la semana pasada?",
    "지난번 주문 뭐였지?",
    "こんにちは",
    "",
    "   ",
    "🙂🙂🙂",
]


def test_encode_shape_dtype_and_unit_norm(encoder):
    vectors = encoder.encode(SENTENCES)
    assert vectors.shape == (len(SENTENCES), encoder.dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


# Dynamic INT8 quantizes activations with one scale per tensor, so a text's vector
# depends very slightly on its batch mates; 0.999 is far above any routing effect
# (measured: >= 0.9998 on SENTENCES with the shipped student).
BATCH_COSINE_FLOOR = 0.999


def test_batching_and_order_barely_change_vectors(encoder):
    together = encoder.encode(SENTENCES, batch_size=32)
    one_by_one = np.vstack([encoder.encode([s]) for s in SENTENCES])
    assert (together * one_by_one).sum(axis=1).min() >= BATCH_COSINE_FLOOR
    reversed_ = encoder.encode(SENTENCES[::-1], batch_size=3)[::-1]
    assert (together * reversed_).sum(axis=1).min() >= BATCH_COSINE_FLOOR


def test_same_input_gives_identical_output(encoder):
    np.testing.assert_array_equal(encoder.encode(SENTENCES), encoder.encode(SENTENCES))


def test_single_string_is_one_vector_and_a_list_is_a_matrix(encoder):
    vector = encoder.encode("hello")
    assert vector.shape == (encoder.dim,) and vector.dtype == np.float32
    np.testing.assert_allclose(vector, encoder.encode(["hello"])[0], atol=1e-6)
    assert encoder.encode(["hello"]).shape == (1, encoder.dim)
    assert encoder.encode([]).shape == (0, encoder.dim)


def test_huge_input_is_truncated_quickly(encoder):
    huge = "remind me to buy milk " * 100_000  # 2.2 MB
    start = time.perf_counter()
    vector = encoder.encode([huge])
    assert time.perf_counter() - start < 5.0, "huge input should be capped before tokenizing"
    np.testing.assert_allclose(vector, encoder.encode([huge[:20_000]]), atol=1e-5)


@pytest.mark.parametrize("bad", [None, [None], ["ok", 3], [b"bytes"]])
def test_non_text_input_is_rejected_by_position(encoder, bad):
    with pytest.raises(TypeError, match="None|texts\\["):
        encoder.encode(bad)


def test_invalid_options_are_named(student_dir, encoder):
    with pytest.raises(ValueError, match="threads=0"):
        StudentEncoder.load(student_dir, threads=0)
    with pytest.raises(ValueError, match="batch_size=0"):
        encoder.encode(["x"], batch_size=0)


def test_encode_tokens_offsets_point_into_the_text(encoder):
    text = "book a table for two"
    (result,) = encoder.encode_tokens([text])
    assert result.vectors.shape == (len(result.offsets), encoder.dim)
    pieces = [text[s:e] for s, e in result.offsets]
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")
    np.testing.assert_allclose(result.sentence, encoder.encode([text])[0], atol=1e-5)


def test_encode_tokens_empty_text_has_no_tokens(encoder):
    (result,) = encoder.encode_tokens([""])
    assert result.vectors.shape == (0, encoder.dim) and result.offsets == []


@pytest.mark.parametrize("name", ["model.onnx", "tokenizer.json", "student.json"])
def test_missing_file_is_named(student_copy, name):
    (student_copy / name).unlink()
    with pytest.raises(FileNotFoundError, match=name):
        StudentEncoder.load(student_copy)


@pytest.mark.parametrize("name", ["model.onnx", "tokenizer.json"])
def test_corrupt_file_is_named(student_copy, name):
    path = student_copy / name
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match=name):
        StudentEncoder.load(student_copy)


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        StudentEncoder.load(tmp_path / "nope")
