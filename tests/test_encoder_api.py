"""The encode API as sentence-transformers users expect it, and centred similarity."""
import numpy as np
import pytest

from rasa_intent_student.errors import StudentError
from rasa_intent_student.pooling import centre, normalize

UNRELATED = ["book a table for two at 7", "the weather is lovely today", "지난번 주문 뭐였지?",
             "cuéntame un chiste", "my flight lands at noon", "Wie spät ist es?"]


def test_normalize_embeddings_overrides_the_manifest(encoder):
    raw = encoder.encode(UNRELATED, normalize_embeddings=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)
    np.testing.assert_allclose(normalize(raw), encoder.encode(UNRELATED), atol=1e-6)
    np.testing.assert_allclose(encoder.encode(UNRELATED, normalize_embeddings=True), encoder.encode(UNRELATED), atol=1e-6)
    one = encoder.encode("hello", normalize_embeddings=False)
    assert one.shape == (encoder.dim,) and abs(np.linalg.norm(one) - 1.0) > 1e-3


def test_prompt_defaults_to_the_manifest_prefix(encoder):
    assert encoder.manifest.prefix == "query: "
    default = encoder.encode(UNRELATED)
    np.testing.assert_allclose(encoder.encode(UNRELATED, prompt="query: "), default, atol=1e-6)
    passage = encoder.encode(UNRELATED, prompt="passage: ")
    bare = encoder.encode(UNRELATED, prompt="")
    assert not np.allclose(passage, default, atol=1e-3) and not np.allclose(bare, default, atol=1e-3)
    # "passage: X" is the same input as prompt="" with the text "passage: X".
    np.testing.assert_allclose(passage, encoder.encode(["passage: " + t for t in UNRELATED], prompt=""), atol=1e-6)
    with pytest.raises(TypeError, match="prompt"):
        encoder.encode("x", prompt=3)


def test_prompt_shifts_token_offsets_correctly(encoder):
    text = "book a table"
    (with_passage,) = encoder.encode_tokens([text], prompt="passage: ")
    assert "".join(text[s:e] for s, e in with_passage.offsets).replace(" ", "") == "bookatable"


def test_show_progress_bar_gives_the_same_vectors(encoder, capsys):
    texts = UNRELATED * 3
    with_bar = encoder.encode(texts, batch_size=4, show_progress_bar=True)
    assert "Batches" in capsys.readouterr().err
    assert (with_bar * encoder.encode(texts, batch_size=4)).sum(axis=1).min() > 0.9999


def test_batch_size_is_checked(encoder):
    with pytest.raises(StudentError, match="batch_size=0"):
        encoder.encode("x", batch_size=0)
    with pytest.raises(StudentError, match="batch_size=True"):
        encoder.encode(["x"], batch_size=True)


def test_similarity_matrix_shapes_and_values(encoder):
    a, b = encoder.encode(UNRELATED[:2]), encoder.encode(UNRELATED[2:5])
    sim = encoder.similarity(a, b)
    assert sim.shape == (2, 3) and sim.dtype == np.float32
    np.testing.assert_allclose(sim, a @ b.T, atol=1e-5)
    assert encoder.similarity(a[0], b[0]).shape == (1, 1)


def test_centring_removes_the_common_direction(encoder):
    vectors = encoder.encode(UNRELATED)
    off_diagonal = ~np.eye(len(UNRELATED), dtype=bool)
    raw = encoder.similarity(vectors, vectors)[off_diagonal]
    centred = encoder.similarity(vectors, vectors, centre=True)[off_diagonal]
    assert raw.mean() > 0.6  # unrelated sentences look alike before centring
    assert abs(centred.mean()) < 0.25 and centred.mean() < raw.mean() - 0.4
    # Related pairs (a translation) stay clearly above unrelated ones after centring.
    en, es = encoder.encode(["what did I order last week?", "¿qué pedí la semana pasada?"])
    assert encoder.similarity(en, es, centre=True)[0, 0] > centred.max()


def test_reference_mean_is_the_stated_sample_and_cached(encoder):
    mean = encoder.reference_mean()
    assert mean.shape == (encoder.dim,) and mean.dtype == np.float32
    assert encoder.reference_mean() is mean
    np.testing.assert_allclose(
        encoder.similarity(encoder.encode(UNRELATED[:1]), encoder.encode(UNRELATED[1:2]), centre=mean),
        encoder.similarity(encoder.encode(UNRELATED[:1]), encoder.encode(UNRELATED[1:2]), centre=True),
    )


def test_centre_helper(encoder):
    vectors = np.array([[1.0, 2.0], [3.0, 2.0]], dtype=np.float32)
    out = centre(vectors, np.array([2.0, 2.0]))
    np.testing.assert_allclose(out, [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(centre(vectors, vectors[0]), [[0.0, 0.0], [1.0, 0.0]])  # a row equal to the mean: zeros
    with pytest.raises(ValueError, match="mean has shape"):
        centre(vectors, np.zeros(3))
