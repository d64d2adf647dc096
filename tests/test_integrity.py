"""A damaged or mismatched student refuses to load, with one error that names the file."""
import json
import logging

import numpy as np
import pytest

from rasa_intent_student.encoder import StudentEncoder
from rasa_intent_student.errors import IntegrityError, StudentError
from rasa_intent_student.integrity import initializer_shapes
from rasa_intent_student.manifest import StudentManifest, file_sha256, seal_student


def flip_byte(path, offset=None):
    data = bytearray(path.read_bytes())
    offset = len(data) // 2 if offset is None else offset  # inside the embedding table's raw data
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def edit_manifest(directory, **changes):
    path = directory / "student.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_flipped_byte_in_onnx_refuses_when_checksums_are_recorded(student_copy):
    seal_student(student_copy)
    StudentEncoder.load(student_copy)  # sealed and intact: loads
    flip_byte(student_copy / "model.onnx")
    with pytest.raises(IntegrityError, match=r"model\.onnx is damaged: its SHA-256"):
        StudentEncoder.load(student_copy)


def test_the_same_flip_is_silent_without_checksums(student_copy):
    """Why checksums are needed: onnxruntime loads and serves a graph with a flipped weight byte."""
    edit_manifest(student_copy, checksums={})
    flip_byte(student_copy / "model.onnx")
    assert StudentEncoder.load(student_copy).encode("hello").shape == (384,)


def test_flipped_byte_in_tokenizer_refuses(student_copy):
    seal_student(student_copy)
    path = student_copy / "tokenizer.json"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"▁the"', '"▁thE"', 1), encoding="utf-8")
    with pytest.raises(IntegrityError, match=r"tokenizer\.json is damaged"):
        StudentEncoder.load(student_copy)


def test_manifest_without_checksums_loads_with_a_warning(student_copy, caplog):
    edit_manifest(student_copy, checksums={})
    with caplog.at_level(logging.WARNING, logger="rasa_intent_student.integrity"):
        encoder = StudentEncoder.load(student_copy)
    assert encoder.manifest.checksums == {}
    assert "records no checksums" in caplog.text and "student.json" in caplog.text


def test_sealed_manifest_records_the_files_sha256(student_copy):
    manifest = seal_student(student_copy)
    assert manifest.checksums == {n: file_sha256(student_copy / n) for n in ("model.onnx", "tokenizer.json", "language_offsets.npy")}
    assert StudentManifest.load(student_copy).checksums == manifest.checksums


def test_manifest_dim_768_refuses(student_copy):
    edit_manifest(student_copy, dim=768)
    with pytest.raises(IntegrityError, match=r"student\.json says dim=768, but .*model\.onnx outputs 384-dim"):
        StudentEncoder.load(student_copy)


def test_manifest_max_seq_length_100000_refuses(student_copy):
    edit_manifest(student_copy, max_seq_length=100000)
    with pytest.raises(IntegrityError, match=r"student\.json says max_seq_length=100000, beyond the graph's position table \(512 rows\)"):
        StudentEncoder.load(student_copy)


def test_max_seq_length_option_beyond_position_table_refuses(student_dir):
    with pytest.raises(StudentError, match="max_seq_length=600 exceeds the graph's position table"):
        StudentEncoder.load(student_dir, max_seq_length=600)


def test_manifest_pooling_that_the_graph_does_not_do_refuses(student_copy):
    edit_manifest(student_copy, pooling="cls")
    with pytest.raises(IntegrityError, match=r"'sentence_embedding' is not the 'cls' pooling that .*student\.json names"):
        StudentEncoder.load(student_copy)


def test_corrupt_manifest_value_is_an_integrity_error_naming_it(student_copy):
    edit_manifest(student_copy, dim="384")
    with pytest.raises(IntegrityError, match=r"Corrupt .*student\.json: dim='384' is not an integer"):
        StudentEncoder.load(student_copy)


def test_position_and_word_tables_are_read_from_the_graph(student_dir):
    shapes = initializer_shapes((student_dir / "model.onnx").read_bytes())
    positions = [s for n, s in shapes.items() if "position_embeddings" in n and len(s) == 2]
    assert positions and positions[0][0] >= StudentManifest.load(student_dir).max_seq_length
    assert any("word_embeddings" in n and len(s) == 2 for n, s in shapes.items())


def test_lone_surrogate_text_is_repaired_not_dropped(encoder):
    broken = "book a table \ud83d for two \udc00"
    repaired = "book a table \ufffd for two \ufffd"
    vector = encoder.encode(broken)
    assert vector.shape == (encoder.dim,) and np.isfinite(vector).all()
    np.testing.assert_allclose(vector, encoder.encode(repaired), atol=1e-6)
    batch = encoder.encode(["fine", broken])
    assert float(batch[1] @ vector) > 0.999  # batching moves INT8 vectors only slightly
    (tokens,) = encoder.encode_tokens([broken])
    assert all(broken[s:e].strip() for s, e in tokens.offsets)  # offsets still index the original text
    assert len(tokens.offsets) == len(encoder.encode_tokens([repaired])[0].offsets)


def test_empty_text_works(encoder):
    vector = encoder.encode("")
    assert vector.shape == (encoder.dim,) and np.isfinite(vector).all()
    np.testing.assert_allclose(np.linalg.norm(vector), 1.0, atol=1e-5)
