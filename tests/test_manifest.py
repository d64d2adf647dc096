import json

import pytest

from rasa_intent_student.manifest import StudentManifest


def test_round_trip(tmp_path):
    manifest = StudentManifest(
        dim=384, teacher="intfloat/multilingual-e5-small", layers_kept=(0, 11), vocab_size=55000,
        quantization="int8-dynamic", languages=("en", "ko"), versions={"onnx": "1.0"}, metrics={"cosine": 0.99},
    )
    manifest.save(tmp_path)
    assert StudentManifest.load(tmp_path) == manifest


def test_unknown_pooling_lists_valid_options():
    with pytest.raises(ValueError, match=r"Unknown pooling 'max'.*'mean'"):
        StudentManifest(dim=8, pooling="max")


def test_unknown_quantization_lists_valid_options():
    with pytest.raises(ValueError, match=r"Unknown quantization 'int4'.*int8-dynamic"):
        StudentManifest(dim=8, quantization="int4")


def test_unknown_key_is_named(tmp_path):
    (tmp_path / "student.json").write_text(json.dumps({"dim": 8, "hidden": 3}))
    with pytest.raises(ValueError, match=r"Unknown keys \['hidden'\]"):
        StudentManifest.load(tmp_path)


def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="student.json not found"):
        StudentManifest.load(tmp_path)
    (tmp_path / "student.json").write_text("{not json")
    with pytest.raises(ValueError, match="Corrupt .*student.json"):
        StudentManifest.load(tmp_path)


def test_checksums_round_trip_and_are_omitted_when_empty(tmp_path):
    digest = "ab" * 32
    manifest = StudentManifest(dim=8, checksums={"model.onnx": digest})
    manifest.save(tmp_path)
    assert StudentManifest.load(tmp_path).checksums == {"model.onnx": digest}
    assert "checksums" not in StudentManifest(dim=8).to_dict()  # older releases can still read it


@pytest.mark.parametrize(
    "checksums, message",
    [({"model.onnx": "xyz"}, "not a lowercase SHA-256"), ({"student.json": "ab" * 32}, "only .*checksummed"),
     (["model.onnx"], "not a mapping")],
)
def test_bad_checksums_are_rejected(checksums, message):
    from rasa_intent_student.errors import StudentError

    with pytest.raises(StudentError, match=message):
        StudentManifest(dim=8, checksums=checksums)


def test_verify_file(tmp_path):
    from rasa_intent_student.errors import IntegrityError
    from rasa_intent_student.manifest import file_sha256

    path = tmp_path / "model.onnx"
    path.write_bytes(b"graph")
    assert StudentManifest(dim=8).verify_file(path) is False  # nothing recorded
    sealed = StudentManifest(dim=8, checksums={"model.onnx": file_sha256(path)})
    assert sealed.verify_file(path) is True
    path.write_bytes(b"grapH")
    with pytest.raises(IntegrityError, match="model.onnx is damaged"):
        sealed.verify_file(path)
