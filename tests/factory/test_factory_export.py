import numpy as np
import pytest

from rasa_intent_student.constants import ATTENTION_MASK, INPUT_IDS, INT8_COSINE_FLOOR, SENTENCE_OUTPUT, TOKEN_OUTPUT
from rasa_intent_student.factory.export import check_parity, export_onnx, make_feeds, onnx_forward, torch_forward
from rasa_intent_student.factory.prune import keep_layers
from rasa_intent_student.factory.quantize import mean_cosine, quantize_int8, quantized_initializers
from rasa_intent_student.factory.sentences import check_sentences
from rasa_intent_student.factory.teacher import load_teacher

pytestmark = pytest.mark.factory

TEXTS = check_sentences()[:12] + ["hi", "a much longer sentence that pads every other row of the batch quite a bit"]


@pytest.fixture
def exported(tiny_teacher, tmp_path):
    teacher = load_teacher(str(tiny_teacher), tmp_path)
    keep_layers(teacher.model, [0, 3])
    path = export_onnx(teacher.model, tmp_path / "fp32.onnx", teacher.pooling)
    return teacher, path


def test_onnx_matches_torch_on_new_batch_and_sequence_sizes(exported):
    teacher, path = exported
    feeds = make_feeds(teacher.tokenizer_path, TEXTS, teacher.prefix)
    assert feeds[INPUT_IDS].shape[0] == len(TEXTS) and feeds[INPUT_IDS].shape[1] > 5  # not the export's 2 x 5
    assert check_parity(teacher.model, path, feeds, teacher.pooling) <= 1e-4
    got, want = onnx_forward(path, feeds), torch_forward(teacher.model, teacher.pooling, feeds)
    assert got[TOKEN_OUTPUT].shape == (len(TEXTS), feeds[INPUT_IDS].shape[1], 32)
    mask = feeds[ATTENTION_MASK][..., None]
    pooled = (got[TOKEN_OUTPUT] * mask).sum(1) / mask.sum(1)  # sentence output is masked mean, not normalized
    np.testing.assert_allclose(got[SENTENCE_OUTPUT], pooled, atol=1e-5)
    np.testing.assert_allclose(got[SENTENCE_OUTPUT], want[SENTENCE_OUTPUT], atol=1e-4)
    assert abs(np.linalg.norm(got[SENTENCE_OUTPUT], axis=1) - 1).max() > 1e-3
    single = make_feeds(teacher.tokenizer_path, TEXTS[-1:], teacher.prefix)  # batch of one, no padding
    assert check_parity(teacher.model, path, single, teacher.pooling) <= 1e-4


def test_onnx_inputs_are_int64_ids_and_mask(exported):
    import onnxruntime as ort

    _, path = exported
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type) for i in session.get_inputs()] == [(INPUT_IDS, "tensor(int64)"), (ATTENTION_MASK, "tensor(int64)")]
    assert [o.name for o in session.get_outputs()] == [TOKEN_OUTPUT, SENTENCE_OUTPUT]


def test_check_parity_fails_on_a_different_model(exported, tiny_teachers, tmp_path):
    teacher, path = exported
    other = load_teacher(str(tiny_teacher_other(tiny_teachers, teacher)), tmp_path / "o").model
    feeds = make_feeds(teacher.tokenizer_path, TEXTS[:3], teacher.prefix)
    with pytest.raises(ValueError, match="differs"):
        check_parity(other, path, feeds, teacher.pooling)


def tiny_teacher_other(tiny_teachers, teacher):
    return tiny_teachers["bert"] if teacher.model.config.model_type != "bert" else tiny_teachers["xlmr"]


def test_int8_quantizes_the_word_embedding_and_stays_close(exported, tmp_path):
    teacher, path = exported
    int8 = quantize_int8(path, tmp_path / "int8.onnx")
    names = quantized_initializers(int8)
    assert any("word_embeddings" in n for n in names), names
    assert sum("MatMul" in n or "dense" in n for n in names) >= 12  # 2 layers x 6 weight matrices
    feeds = make_feeds(teacher.tokenizer_path, TEXTS, teacher.prefix)
    fid = mean_cosine(onnx_forward(path, feeds), onnx_forward(int8, feeds), feeds[ATTENTION_MASK])
    assert fid["sentence_cosine_mean"] >= INT8_COSINE_FLOOR, fid
    assert fid["sentence_cosine_mean"] < 1.0  # it really is a different (quantized) graph


def test_reference_export_is_sealed_and_refuses_damage(tiny_teachers, tmp_path):
    """The FP32 references bench takes its ratios against carry checksums, like the shipped student."""
    from rasa_intent_student.encoder import StudentEncoder
    from rasa_intent_student.errors import IntegrityError
    from rasa_intent_student.factory.reference import export_st_model
    from rasa_intent_student.manifest import StudentManifest

    out = export_st_model(str(tiny_teachers["bert"]), tmp_path / "teacher-fp32", tmp_path / "work")
    assert {"model.onnx", "tokenizer.json"} <= set(StudentManifest.load(out).checksums)
    assert StudentEncoder.load(out).encode("hello").shape == (32,)
    data = bytearray((out / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (out / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"model\.onnx is damaged"):
        StudentEncoder.load(out)
