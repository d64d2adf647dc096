"""The shipped default student (rasa_intent_student/models/default), checked in the factory env."""
import json

import numpy as np
import pytest

from rasa_intent_student.constants import (
    DEFAULT_MODEL_DIR,
    INT8_COSINE_FLOOR,
    LANGUAGES,
    MAX_DEFAULT_MODEL_BYTES,
    MODEL_CARD_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
)
from rasa_intent_student.factory.sentences import check_sentences
from rasa_intent_student.manifest import StudentManifest

pytestmark = pytest.mark.factory


def test_default_student_is_small_two_layers_and_pruned():
    manifest = StudentManifest.load(DEFAULT_MODEL_DIR)
    assert (DEFAULT_MODEL_DIR / MODEL_FILE).stat().st_size <= MAX_DEFAULT_MODEL_BYTES
    assert manifest.layers_kept == (0, 11) and manifest.dim == 384
    assert 50_000 <= manifest.vocab_size <= 60_000
    assert manifest.languages == LANGUAGES and manifest.prefix == "query: "
    assert manifest.teacher == "intfloat/multilingual-e5-small"
    assert manifest.metrics["fidelity"]["int8_vs_fp32_cosine_mean"] >= INT8_COSINE_FLOOR
    tokenizer = json.loads((DEFAULT_MODEL_DIR / TOKENIZER_FILE).read_text(encoding="utf-8"))
    assert len(tokenizer["model"]["vocab"]) == manifest.vocab_size
    assert (DEFAULT_MODEL_DIR / MODEL_CARD_FILE).is_file()


def test_default_onnx_graph_has_two_layers_and_an_int8_embedding():
    import onnx

    model = onnx.load(str(DEFAULT_MODEL_DIR / MODEL_FILE))
    manifest = StudentManifest.load(DEFAULT_MODEL_DIR)
    shapes = {t.name: (tuple(t.dims), t.data_type) for t in model.graph.initializer}
    word = [v for k, v in shapes.items() if "word_embeddings" in k and len(v[0]) == 2]
    # onnxruntime stores the Gather table as uint8 (activation type), the MatMul weights as int8
    assert word in ([((manifest.vocab_size, 384), onnx.TensorProto.UINT8)], [((manifest.vocab_size, 384), onnx.TensorProto.INT8)])
    layer_ops = {n.name.split("/")[3] for n in model.graph.node if n.name.startswith("/model/encoder/layer.")}
    assert layer_ops == {"layer.0", "layer.1"}


@pytest.mark.slow
def test_default_student_matches_the_fp32_student(e5_teacher_dir):
    """Rebuild the FP32 student from the teacher and the shipped tokenizer; compare sentence embeddings."""
    from tokenizers import Tokenizer

    from rasa_intent_student.encoder import StudentEncoder
    from rasa_intent_student.factory.export import make_feeds, torch_forward
    from rasa_intent_student.factory.prune import keep_layers, prune_vocab
    from rasa_intent_student.factory.teacher import load_teacher

    manifest = StudentManifest.load(DEFAULT_MODEL_DIR)
    teacher = load_teacher(str(e5_teacher_dir), e5_teacher_dir.parent)
    keep_layers(teacher.model, list(manifest.layers_kept))
    full = Tokenizer.from_file(str(teacher.tokenizer_path))
    shipped = json.loads((DEFAULT_MODEL_DIR / TOKENIZER_FILE).read_text(encoding="utf-8"))
    keep = [full.token_to_id(piece) for piece, _ in shipped["model"]["vocab"]]
    assert None not in keep and keep == sorted(keep)
    data = json.loads(teacher.tokenizer_path.read_text(encoding="utf-8"))
    prune_vocab(teacher.model, data, keep)
    texts = check_sentences()
    feeds = make_feeds(DEFAULT_MODEL_DIR / TOKENIZER_FILE, texts, manifest.prefix, manifest.max_seq_length)
    fp32 = torch_forward(teacher.model, "mean", feeds)["sentence_embedding"]
    fp32 /= np.linalg.norm(fp32, axis=1, keepdims=True)
    int8 = StudentEncoder.load(DEFAULT_MODEL_DIR).encode(texts)
    cosines = (fp32 * int8).sum(1)
    assert cosines.mean() >= INT8_COSINE_FLOOR and cosines.min() >= 0.95, cosines
