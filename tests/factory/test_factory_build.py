import json
import subprocess
import sys

import pytest

from rasa_intent_student.constants import INT8_COSINE_FLOOR, MODEL_CARD_FILE, STUDENT_FILES
from rasa_intent_student.factory import BuildConfig, build_student
from rasa_intent_student.factory.sentences import check_sentences
from rasa_intent_student.manifest import StudentManifest

pytestmark = pytest.mark.factory

LANGS = ("en", "de", "th")


@pytest.fixture(scope="session")
def tiny_build(tiny_teachers, route_dir, tmp_path_factory):
    """One tiny student built from the BERT teacher through build_student."""
    root = tmp_path_factory.mktemp("build")
    vocab = json.loads((tiny_teachers["bert"] / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    config = BuildConfig(
        output=root / "student",
        teacher=str(tiny_teachers["bert"]),
        layers=(0, 2),
        vocab_size=len(vocab) - 40,
        languages=LANGS,
        work_dir=root / "work",
        route_dir=route_dir,
        words_per_language=2000,
    )
    return config, build_student(config)


@pytest.mark.slow
def test_build_writes_a_student_that_loads_and_matches_the_torch_student(tiny_build):
    from sentence_transformers import SentenceTransformer

    from rasa_intent_student.encoder import StudentEncoder

    config, metrics = tiny_build
    encoder = StudentEncoder.load(config.output)
    assert encoder.dim == 32
    torch_student = SentenceTransformer(str(config.work_dir / "student-fp32"), device="cpu")
    assert torch_student.get_max_seq_length() == 128
    texts = check_sentences()[:9] + ["hi"]
    ours = encoder.encode(texts)
    # the sentence-transformers dir carries the "query: " prompt as its default, like the manifest
    theirs = torch_student.encode(texts, normalize_embeddings=True)
    cosines = (ours * theirs).sum(1)
    assert cosines.mean() >= INT8_COSINE_FLOOR and cosines.min() > 0.95, cosines
    assert metrics["fidelity"]["int8_vs_fp32_cosine_mean"] >= INT8_COSINE_FLOOR
    assert metrics["fidelity"]["onnx_fp32_max_abs_diff"] <= 1e-4


@pytest.mark.slow
def test_build_manifest_and_card_describe_the_student(tiny_build):
    config, metrics = tiny_build
    for name in STUDENT_FILES + (MODEL_CARD_FILE,):
        assert (config.output / name).is_file(), name
    manifest = StudentManifest.load(config.output)
    assert manifest.layers_kept == (0, 2)
    assert manifest.vocab_size == config.vocab_size
    assert manifest.prefix == "query: " and manifest.pooling == "mean" and manifest.normalize
    assert manifest.quantization == "int8-dynamic" and manifest.languages == LANGS
    assert manifest.max_seq_length == 128 and manifest.dim == 32
    assert {"torch", "onnxruntime", "transformers"} <= set(manifest.versions)
    assert set(manifest.metrics["unk_rate"]) == set(LANGS)
    assert manifest.metrics["unk_rate"]["en"]["source"] == "route-dev"
    card = (config.output / MODEL_CARD_FILE).read_text(encoding="utf-8")
    assert "rasa-intent-student build --teacher" in card
    assert f"{metrics['fidelity']['int8_vs_fp32_cosine_mean']:.4f}" in card
    tokenizer = json.loads((config.output / "tokenizer.json").read_text(encoding="utf-8"))
    assert len(tokenizer["model"]["vocab"]) == manifest.vocab_size
    assert metrics["sizes"]["int8"] == (config.output / "model.onnx").stat().st_size < metrics["sizes"]["fp32"]


@pytest.mark.slow
def test_build_keeps_specials_and_script_characters(tiny_build, tiny_teachers):
    config, _ = tiny_build
    pieces = [p for p, _ in json.loads((config.output / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]]
    assert pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    teacher = [p for p, _ in json.loads((tiny_teachers["bert"] / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]]
    singles = [p for p in teacher if len(p.lstrip("\u2581")) == 1 and p.lstrip("\u2581").isalpha()]
    assert singles and set(singles) <= set(pieces)
    assert pieces == [p for p in teacher if p in set(pieces)]  # teacher order kept


@pytest.mark.slow
def test_build_from_an_xlmr_teacher_without_prefix_via_the_cli(tiny_teachers, route_dir, tmp_path, capsys):
    from rasa_intent_student.cli import main
    from rasa_intent_student.encoder import StudentEncoder

    out = tmp_path / "student"
    code = main([
        "build", "--teacher", str(tiny_teachers["xlmr"]), "--output", str(out), "--layers", "3", "1",
        "--vocab-size", "0", "--work-dir", str(tmp_path / "work"), "--route-data", str(route_dir),
    ])
    assert code == 0
    table = capsys.readouterr().out
    assert "INT8 vs FP32 cosine" in table and str(out) in table
    manifest = StudentManifest.load(out)
    assert manifest.layers_kept == (3, 1) and manifest.prefix == "" and manifest.languages == ()
    assert StudentEncoder.load(out).encode(["hello", "hallo"]).shape == (2, 32)


def test_cli_rejects_unknown_languages(tmp_path, capsys):
    from rasa_intent_student.cli import main

    assert main(["build", "--output", str(tmp_path), "--languages", "en", "xx"]) == 1
    assert "xx" in capsys.readouterr().err


def test_missing_teacher_is_named(tmp_path):
    from rasa_intent_student.factory.teacher import load_teacher

    with pytest.raises(FileNotFoundError, match="no-such-teacher"):
        load_teacher(str(tmp_path / "no-such-teacher"), tmp_path)


def test_factory_import_without_torch_says_how_to_install():
    code = "import sys; sys.modules['torch'] = None; import rasa_intent_student.factory"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert 'pip install "rasa-intent-student[factory]"' in result.stderr
    assert "torch" in result.stderr


@pytest.mark.parametrize(
    "config, expected",
    [
        ({"pooling_mode": "mean", "include_prompt": True}, "mean"),
        ({"pooling_mode": "cls"}, "cls"),
        ({"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False}, "mean"),
        ({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, "cls"),
        ({"pooling_mode": "max"}, None),
        ({"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}, None),
        ({"pooling_mode": "mean", "include_prompt": False}, None),
    ],
)
def test_pooling_mode_reads_old_and_new_configs(tmp_path, config, expected):
    from rasa_intent_student.factory.teacher import pooling_mode

    if expected is None:
        with pytest.raises(ValueError, match="cannot reproduce"):
            pooling_mode(config, tmp_path)
    else:
        assert pooling_mode(config, tmp_path) == expected


def test_a_saved_sentence_transformers_teacher_is_read_back(tiny_teachers, tmp_path):
    """A directory written by SentenceTransformer.save (new-style configs) loads as a teacher."""
    from sentence_transformers import SentenceTransformer

    from rasa_intent_student.factory.teacher import load_teacher

    SentenceTransformer(str(tiny_teachers["bert"]), device="cpu").save(str(tmp_path / "saved"))
    teacher = load_teacher(str(tmp_path / "saved"), tmp_path)
    assert (teacher.pooling, teacher.prefix) == ("mean", "query: ")
    assert teacher.model.config.num_hidden_layers == 4
