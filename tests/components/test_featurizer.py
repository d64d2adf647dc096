import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import ACTION_NAME, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from rasa_intent_student.components.featurizer import StudentFeaturizer, align_to_tokens
from rasa_intent_student.constants import DEFAULT_MODEL_DIR, LANGUAGE_OFFSETS_FILE, STUDENT_FILES
from rasa_intent_student.manifest import StudentManifest, file_sha256
from rasa_intent_student.tokens import TokenEmbeddings

from .conftest import messages

TEXTS = ["book a table for two at 7", "¿qué pedí la semana pasada?", "hello-world! it's me"]


def dense(message: Message):
    sequence, sentence = message.get_dense_features(TEXT)
    return (None if sequence is None else sequence.features), (None if sentence is None else sentence.features)


def test_sequence_features_align_with_whitespace_tokens(featurizer, tokenizer, encoder):
    batch = messages(TEXTS)
    tokenizer.process(batch)
    featurizer.process(batch)
    for message, expected in zip(batch, encoder.encode(TEXTS)):
        sequence, sentence = dense(message)
        assert sequence.shape == (len(message.get("text_tokens")), encoder.dim)
        assert sentence.shape == (1, encoder.dim) and sentence.dtype == np.float32
        np.testing.assert_allclose(sentence[0], expected, atol=1e-4)
        assert np.isfinite(sequence).all() and np.abs(sequence).sum(axis=1).min() > 0


def test_sequence_features_average_the_overlapping_student_tokens(featurizer, tokenizer, encoder):
    message = messages(["book a table"])[0]
    tokenizer.process([message])
    featurizer.process([message])
    (embedded,) = encoder.encode_tokens(["book a table"])
    sequence, _ = dense(message)
    for token, row in zip(message.get("text_tokens"), sequence):
        inside = [v for v, (s, e) in zip(embedded.vectors, embedded.offsets) if s < token.end and e > token.start]
        np.testing.assert_allclose(row, np.mean(inside, axis=0), atol=1e-5)


def test_align_to_tokens_numbers():
    vectors = np.array([[1, 0], [3, 0], [0, 5]], dtype=np.float32)
    sentence = np.array([0.6, 0.8], dtype=np.float32)
    embedded = TokenEmbeddings(vectors, [(0, 2), (2, 4), (5, 7)], sentence)
    tokens = [Token("abcd", 0), Token("fg", 5), Token("zz", 10)]  # the last one lies past truncation
    aligned = align_to_tokens(embedded, tokens)
    np.testing.assert_allclose(aligned, [[2, 0], [0, 5], [0.6, 0.8]])
    assert align_to_tokens(embedded, []).shape == (0, 2)
    empty = TokenEmbeddings(np.zeros((0, 2), np.float32), [], sentence)
    np.testing.assert_allclose(align_to_tokens(empty, tokens[:1]), [[0.6, 0.8]])


def test_sentence_features_only_without_tokenizer(featurizer, encoder):
    batch = messages(TEXTS)
    featurizer.process(batch)
    for message, expected in zip(batch, encoder.encode(TEXTS)):
        sequence, sentence = dense(message)
        assert sequence is None
        np.testing.assert_allclose(sentence[0], expected, atol=1e-4)


@pytest.mark.parametrize(
    "text", ["   ", "👍🎉", "\n\t", "x " * 20_000, "注文" * 3000], ids=["spaces", "emoji", "tabs", "long", "long-cjk"]
)
def test_odd_texts_get_finite_features(featurizer, tokenizer, encoder, text):
    message = messages([text])[0]
    tokenizer.process([message])
    featurizer.process([message])
    sequence, sentence = dense(message)
    assert sentence.shape == (1, encoder.dim) and np.isfinite(sentence).all()
    assert sequence.shape == (len(message.get("text_tokens")), encoder.dim) and np.isfinite(sequence).all()


def test_empty_text_gets_no_features(featurizer):
    message = messages([""])[0]
    featurizer.process([message])
    assert dense(message) == (None, None)


def test_training_data_skips_messages_without_text(create_featurizer, tokenizer):
    data = TrainingData(
        [Message.build(text="hi there", intent="other"), Message(data={ACTION_NAME: "utter_greet"}), Message(data={"intent": "greet"})]
    )
    tokenizer.process_training_data(data)
    create_featurizer({"batch_size": 1}).process_training_data(data)
    with_text, action, intent_only = data.training_examples
    assert dense(with_text)[1] is not None and len(with_text.features) == 2
    assert action.features == [] and intent_only.features == []


def test_batched_training_features_match_single_messages(create_featurizer, tokenizer):
    data = TrainingData([Message.build(text=t) for t in TEXTS])
    tokenizer.process_training_data(data)
    featurizer = create_featurizer({"batch_size": 2})
    featurizer.process_training_data(data)
    single = messages(TEXTS)
    tokenizer.process(single)
    for message in single:
        featurizer.process([message])
    # INT8 dynamic quantization scales activations per batch, so batching moves features slightly.
    for a, b in zip(data.training_examples, single):
        for fa, fb in zip(dense(a), dense(b)):
            assert fa.shape == fb.shape
            cosine = (fa * fb).sum(axis=1) / (np.linalg.norm(fa, axis=1) * np.linalg.norm(fb, axis=1))
            assert cosine.min() > 0.99


def test_trained_model_is_self_contained(student_copy, model_storage, execution_context, tokenizer):
    config = {**StudentFeaturizer.get_default_config(), "model": str(student_copy)}
    resource = Resource("featurizer")
    featurizer = StudentFeaturizer.create(config, model_storage, resource, execution_context)
    assert featurizer.train(TrainingData()) == resource
    before = messages(TEXTS)
    tokenizer.process(before)
    featurizer.process(before)

    shutil.rmtree(student_copy)  # the archive must not need the original directory
    loaded = StudentFeaturizer.load(config, model_storage, resource, execution_context)
    with model_storage.read_from(resource) as directory:
        assert sorted(p.name for p in directory.iterdir()) == sorted(STUDENT_FILES + (LANGUAGE_OFFSETS_FILE,))
        assert loaded.encoder.language_offsets is not None  # the archive carries the offsets, sealed
        assert loaded.encoder.model_dir == directory
    after = messages(TEXTS)
    tokenizer.process(after)
    loaded.process(after)
    for a, b in zip(before, after):
        for fa, fb in zip(dense(a), dense(b)):
            np.testing.assert_allclose(fa, fb, atol=1e-6)


def test_load_without_stored_student_refuses_instead_of_using_the_configured_one(
    student_dir, model_storage, execution_context
):
    config = {**StudentFeaturizer.get_default_config(), "model": str(student_dir)}
    with pytest.raises(InvalidConfigException, match="holds no student for 'never-trained'.*retrain"):
        StudentFeaturizer.load(config, model_storage, Resource("never-trained"), execution_context)


def train_stored_student(student_copy, model_storage, execution_context):
    config = {**StudentFeaturizer.get_default_config(), "model": str(student_copy)}
    resource = StudentFeaturizer.create(config, model_storage, Resource("f"), execution_context).train(TrainingData())
    return config, resource


def test_stored_student_records_checksums(student_copy, model_storage, execution_context):
    config, resource = train_stored_student(student_copy, model_storage, execution_context)
    with model_storage.read_from(resource) as directory:
        manifest = StudentManifest.load(directory)
        assert manifest.checksums == {n: file_sha256(directory / n) for n in ("model.onnx", "tokenizer.json", LANGUAGE_OFFSETS_FILE)}
    StudentFeaturizer.load(config, model_storage, resource, execution_context)  # intact: loads


def test_flipped_byte_in_stored_onnx_refuses(student_copy, model_storage, execution_context):
    config, resource = train_stored_student(student_copy, model_storage, execution_context)
    with model_storage.read_from(resource) as directory:
        path = directory / "model.onnx"
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    with pytest.raises(InvalidConfigException, match=r"model\.onnx is damaged: its SHA-256"):
        StudentFeaturizer.load(config, model_storage, resource, execution_context)


def test_student_dir_removed_from_trained_model_refuses(student_copy, model_storage, execution_context):
    config, resource = train_stored_student(student_copy, model_storage, execution_context)
    with model_storage.read_from(resource) as directory:
        stored = Path(directory)
    shutil.rmtree(stored)
    # The configured student still exists: it must not stand in for the stored one.
    assert (student_copy / "model.onnx").is_file()
    with pytest.raises(InvalidConfigException, match="holds no student for 'f'.*damaged or incomplete"):
        StudentFeaturizer.load(config, model_storage, resource, execution_context)


def test_stored_manifest_with_wrong_dim_refuses(student_copy, model_storage, execution_context):
    config, resource = train_stored_student(student_copy, model_storage, execution_context)
    with model_storage.read_from(resource) as directory:
        path = directory / "student.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps({**data, "dim": 768}), encoding="utf-8")
    with pytest.raises(InvalidConfigException, match=r"student\.json says dim=768"):
        StudentFeaturizer.load(config, model_storage, resource, execution_context)


def test_lone_surrogate_message_is_featurized_not_dropped(featurizer, tokenizer, encoder):
    broken, repaired = messages(["book a table \ud83d for two"]), messages(["book a table \ufffd for two"])
    for batch in (broken, repaired):
        tokenizer.process(batch)
        featurizer.process(batch)
    (sequence, sentence), (expected_sequence, expected_sentence) = dense(broken[0]), dense(repaired[0])
    assert sentence.shape == (1, encoder.dim) and np.isfinite(sentence).all()
    assert sequence.shape == (len(broken[0].get("text_tokens")), encoder.dim)
    np.testing.assert_allclose(sentence, expected_sentence, atol=1e-6)
    np.testing.assert_allclose(sequence, expected_sequence, atol=1e-6)


def test_fingerprint_changes_with_student_files(student_copy):
    config = {"model": str(student_copy)}
    first = StudentFeaturizer.fingerprint_addon(config)
    assert first == StudentFeaturizer.fingerprint_addon(dict(config))
    manifest = student_copy / "student.json"
    manifest.write_text(manifest.read_text() + "\n")
    assert StudentFeaturizer.fingerprint_addon(config) != first


@pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "model.onnx").is_file(), reason="no embedded default student yet")
def test_default_config_uses_embedded_student(model_storage, execution_context):
    featurizer = StudentFeaturizer.create(
        StudentFeaturizer.get_default_config(), model_storage, Resource("f"), execution_context
    )
    assert featurizer.encoder.model_dir == DEFAULT_MODEL_DIR


@pytest.mark.parametrize(
    "config, message",
    [
        ({"batch_size": 0}, r"batch_size=0 is invalid; use a positive integer"),
        ({"batch_size": True}, r"batch_size=True is invalid"),
        ({"batch_size": None}, r"batch_size=None is invalid"),
        ({"threads": -1}, r"threads=-1 is invalid"),
        ({"max_seq_length": 2}, r"max_seq_length=2 is invalid; use an integer in \[3, 512\]"),
        ({"max_seq_length": 4096}, r"max_seq_length=4096 is invalid"),
        ({"model": 42}, r"model=42 is not a path"),
    ],
)
def test_bad_config_raises(create_featurizer, config, message):
    with pytest.raises(InvalidConfigException, match=message):
        create_featurizer(config)


def test_missing_student_dir_raises(create_featurizer, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(InvalidConfigException, match=f"model='{missing}' is not usable.*Set `model`"):
        create_featurizer({"model": str(missing)})


def test_max_seq_length_above_student_limit_raises(create_featurizer, encoder):
    limit = encoder.manifest.max_seq_length
    if limit >= 512:
        pytest.skip("student already allows the maximum")
    with pytest.raises(InvalidConfigException, match=f"exceeds the student's limit of {limit}"):
        create_featurizer({"max_seq_length": limit + 1})


def test_damaged_stored_student_raises_instead_of_swapping(student_copy, model_storage, execution_context):
    config = {**StudentFeaturizer.get_default_config(), "model": str(student_copy)}
    resource = StudentFeaturizer.create(config, model_storage, Resource("f"), execution_context).train(TrainingData())
    with model_storage.read_from(resource) as directory:
        (directory / "tokenizer.json").unlink()
    with pytest.raises(InvalidConfigException, match="tokenizer.json not found"):
        StudentFeaturizer.load(config, model_storage, resource, execution_context)


def test_language_neutral_features_follow_the_config(student_copy, model_storage, execution_context):
    """null (default): the student's offsets are removed; false: raw vectors; true without offsets: refused."""
    from rasa_intent_student.language_offsets import drop_student_offsets

    text = "¿qué pedí ayer?"
    vectors = {}
    for neutral in (None, False):
        config = {**StudentFeaturizer.get_default_config(), "model": str(student_copy), "language_neutral": neutral}
        featurizer = StudentFeaturizer.create(config, model_storage, Resource(f"f-{neutral}"), execution_context)
        message = Message(data={TEXT: text})
        featurizer.process([message])
        vectors[neutral] = message.get_dense_features(TEXT)[1].features[0]
    encoder = featurizer.encoder
    assert vectors[None] == pytest.approx(encoder.encode(text), abs=1e-5)
    assert vectors[False] == pytest.approx(encoder.encode(text, language_neutral=False), abs=1e-5)
    drop_student_offsets(student_copy)
    config = {**StudentFeaturizer.get_default_config(), "model": str(student_copy), "language_neutral": True}
    with pytest.raises(InvalidConfigException, match="has no language offsets"):
        StudentFeaturizer.create(config, model_storage, Resource("f-true"), execution_context)
