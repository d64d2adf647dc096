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
        latency_runs=30,
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
def test_the_fp32_reference_has_its_own_checksums_and_offsets(tiny_build, tmp_path):
    import numpy as np

    from rasa_intent_student.encoder import StudentEncoder
    from rasa_intent_student.factory.reference import export_student_fp32

    config, _ = tiny_build
    shipped = StudentManifest.load(config.output)
    assert shipped.language_offsets and shipped.checksums
    reference = export_student_fp32(tmp_path / "fp32", config.work_dir, config.output)
    manifest = StudentManifest.load(reference)
    assert manifest.quantization == "none" and manifest.language_offsets == shipped.language_offsets
    assert manifest.checksums["model.onnx"] != shipped.checksums["model.onnx"]
    assert manifest.checksums["language_offsets.npy"] != shipped.checksums["language_offsets.npy"]
    fp32, int8 = StudentEncoder.load(reference), StudentEncoder.load(config.output)  # both verify their checksums
    texts = check_sentences()[:12]
    assert (fp32.encode(texts) * int8.encode(texts)).sum(1).mean() >= INT8_COSINE_FLOOR
    assert not np.allclose(fp32.encode(texts), fp32.encode(texts, language_neutral=False))


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
    assert manifest.verify_file(config.output / "model.onnx") and manifest.verify_file(config.output / "tokenizer.json")
    assert set(manifest.metrics["unk_rate"]) == set(LANGS)
    assert manifest.metrics["unk_rate"]["en"]["source"] == "route-dev"
    card = (config.output / MODEL_CARD_FILE).read_text(encoding="utf-8")
    assert "rasa-intent-student build --teacher" in card
    assert f"{metrics['fidelity']['int8_vs_fp32_cosine_mean']:.4f}" in card
    tokenizer = json.loads((config.output / "tokenizer.json").read_text(encoding="utf-8"))
    assert len(tokenizer["model"]["vocab"]) == manifest.vocab_size
    # Language offsets of the route data's languages, sealed, named in the card; the encoder uses them.
    assert manifest.language_offsets == tuple(lang for lang in LANGS if (config.route_dir / "train" / f"{lang}.jsonl").is_file())
    assert manifest.verify_file(config.output / "language_offsets.npy")
    assert f"{len(manifest.language_offsets)} languages (`language_offsets.npy`" in card
    assert metrics["sizes"]["int8"] == (config.output / "model.onnx").stat().st_size < metrics["sizes"]["fp32"]


@pytest.mark.slow
def test_build_ships_the_fused_int8_graph_and_records_its_choice(tiny_build):
    from rasa_intent_student.encoder import StudentEncoder
    from rasa_intent_student.factory.export import graph_ops
    from rasa_intent_student.factory.quantize import DEFAULT_QUANT_MODE, QUANT_MODES

    config, metrics = tiny_build
    ops = graph_ops(config.output / "model.onnx")
    assert sum(ops.values()) <= 80 and ops.get("QAttention") == 2 and ops.get("QEmbedLayerNormalization") == 1, ops
    graph = StudentManifest.load(config.output).metrics["graph"]
    assert graph["fused"] is True and graph["quantization"]["mode"] == DEFAULT_QUANT_MODE
    assert graph["nodes"]["int8"] == sum(ops.values()) and graph["int8_fused_ops"]["QAttention"] == 2
    assert graph["nodes"]["export_fp32"] > 4 * graph["nodes"]["fused_fp32"]
    assert graph["fusions"]["Attention"] == 2 and graph["fusions"]["EmbedLayerNormalization"] == 1
    # every mode was quantized, timed and compared, plus the unfused graph and the FP32 one
    shipped = graph["candidates"][graph["shipped"]]
    assert graph["shipped"] == f"fused int8 {DEFAULT_QUANT_MODE}"
    assert {f"fused int8 {m}" for m in QUANT_MODES} | {f"unfused int8 {DEFAULT_QUANT_MODE}", "fused fp32"} == set(graph["candidates"])
    assert shipped["cosine_mean"] == metrics["fidelity"]["int8_vs_fp32_cosine_mean"] and shipped["bytes"] == graph["bytes"]
    assert all(row["p50_ms"] > 0 for row in graph["candidates"].values())
    assert graph["latency"]["runs"] == config.latency_runs and graph["latency"]["threads"] == 1
    assert graph["candidates"][f"unfused int8 {DEFAULT_QUANT_MODE}"]["nodes"] > 2 * graph["nodes"]["int8"]
    card = (config.output / MODEL_CARD_FILE).read_text(encoding="utf-8")
    assert "## Graph" in card and "Fused: yes" in card and f"**fused int8 {DEFAULT_QUANT_MODE}** (shipped)" in card
    assert f"{shipped['p50_ms']:.3f} ms" in card
    encoder = StudentEncoder.load(config.output)  # the runtime feeds what the fused graph needs
    assert [i.name for i in encoder.session.get_inputs()] == ["input_ids", "attention_mask"]
    assert encoder.encode(["hi", "Wie ist das Wetter heute?"]).shape == (2, 32)


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
        "--no-fuse", "--quantization", "u8-tensor", "--no-compare-quantization", "--latency-runs", "7",
    ])
    assert code == 0
    table = capsys.readouterr().out
    assert "INT8 vs FP32 cosine" in table and str(out) in table
    assert "not fused, u8-tensor" in table and "p50 1 thread: unfused int8 u8-tensor" in table
    manifest = StudentManifest.load(out)
    assert manifest.layers_kept == (3, 1) and manifest.prefix == "" and manifest.languages == ()
    graph = manifest.metrics["graph"]
    assert graph["fused"] is False and "fused_fp32" not in graph["nodes"] and graph["quantization"]["mode"] == "u8-tensor"
    assert list(graph["candidates"]) == ["unfused int8 u8-tensor"] and graph["latency"]["runs"] == 7
    card = (out / MODEL_CARD_FILE).read_text(encoding="utf-8")
    assert "Fused: no" in card
    # The card records the command as it was given to the CLI.
    command = manifest.metrics["build_command"]
    assert command.startswith(f"rasa-intent-student build --teacher {tiny_teachers['xlmr']} ") and command in card
    assert command.endswith("--no-compare-quantization --latency-runs 7")
    assert StudentEncoder.load(out).encode(["hello", "hallo"]).shape == (2, 32)


def test_cli_rejects_unknown_quantization_modes(tmp_path, capsys):
    from rasa_intent_student.cli import main

    with pytest.raises(SystemExit):
        main(["build", "--output", str(tmp_path), "--quantization", "int4"])
    assert "s8-channel-7bit" in capsys.readouterr().err


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
