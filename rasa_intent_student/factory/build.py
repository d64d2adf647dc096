"""The whole factory: teacher -> keep layers -> prune vocabulary -> ONNX -> INT8 -> verify -> describe."""
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from rasa_intent_student.constants import (
    ATTENTION_MASK,
    BENCH_LATENCY_RUNS,
    DEFAULT_LAYERS_KEPT,
    DEFAULT_MAX_SEQ_LENGTH,
    DEFAULT_VOCAB_SIZE,
    DIALOGUE_MIN_COUNT,
    DIALOGUE_VOCAB_SOURCES,
    E5_OFFLINE_TEACHER,
    FACTORY_WORK_DIR,
    INT8_COSINE_FLOOR,
    LANGUAGES,
    MODEL_FILE,
    ROUTE_DATA_DIR,
    SENTENCE_OUTPUT,
    TOKENIZER_FILE,
)
from rasa_intent_student.errors import StudentError
from rasa_intent_student.factory.build_record import default_command, record_distillation
from rasa_intent_student.machine import describe_machine
from rasa_intent_student.factory.e5_offline import E5_WEIGHTS_NOTE
from rasa_intent_student.factory.graph_report import compare_graphs, node_count, record_int8_graph
from rasa_intent_student.factory.quantize import DEFAULT_QUANT_MODE, QUANT_MODES
from rasa_intent_student.factory.vocab import WORDS_PER_LANGUAGE
from rasa_intent_student.pooling import row_cosines

logger = logging.getLogger(__name__)

FP32_ONNX = "model-fp32.onnx"
FUSED_ONNX = "model-fp32-fused.onnx"
FP32_ST_DIR = "student-fp32"
DEV_TEXTS_PER_LANGUAGE = 10


@dataclass
class BuildConfig:
    """What ``rasa-intent-student build`` makes.

    Attributes:
        output: the student model directory to write (model.onnx, tokenizer.json, student.json, README.md).
        teacher: ``e5-small-offline`` or a sentence-transformers directory / cached hub id.
        layers: teacher layers to keep.
        vocab_size: pieces to keep (None: keep the whole vocabulary).
        languages: languages the vocabulary is pruned for.
        work_dir: scratch space: teacher rebuild, FP32 ONNX, FP32 sentence-transformers student.
        route_dir: route data (train split chooses pieces, dev split measures unk rate and fidelity).
        dialogue_sources: the dialogue messages (``factory.parallel``) whose pieces are kept ahead of the frequency
            lists; the default recipe's even for a student distilled on the staged ones too (measured: README).
        dialogue_min_count: occurrences such a piece needs to be kept.
        max_seq_length: written to student.json.
        prefix: override of the teacher's prompt prefix.
        cosine_floor: minimum mean INT8-vs-FP32 cosine; the build fails below it.
        command: the command line recorded in the model card.
        words_per_language: wordfreq words per language used to rank pieces.
        extra_sentences: more texts for the fidelity checks.
        fuse: apply onnxruntime's transformer fusions (Attention, EmbedLayerNormalization,
            SkipLayerNormalization, BiasGelu) before quantizing; False keeps the raw export (debugging).
        quantization: the shipped INT8 mode, one of ``QUANT_MODES`` (weights u8/s8, per channel/tensor).
        compare_quantization: also quantize with the other modes and record their cosines and
            latencies (and the unfused graph's, when fused) in the card, so the choice stays measured.
        latency_runs: single-utterance ``session.run`` calls timed per graph (1 thread); 0 skips timing.
    """

    output: Path
    teacher: str = E5_OFFLINE_TEACHER
    layers: Tuple[int, ...] = DEFAULT_LAYERS_KEPT
    vocab_size: Optional[int] = DEFAULT_VOCAB_SIZE
    languages: Tuple[str, ...] = LANGUAGES
    work_dir: Path = FACTORY_WORK_DIR
    route_dir: Optional[Path] = ROUTE_DATA_DIR
    dialogue_sources: Tuple[str, ...] = DIALOGUE_VOCAB_SOURCES
    dialogue_min_count: int = DIALOGUE_MIN_COUNT
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH
    prefix: Optional[str] = None
    cosine_floor: float = INT8_COSINE_FLOOR
    command: str = ""
    words_per_language: int = WORDS_PER_LANGUAGE
    extra_sentences: List[str] = field(default_factory=list)
    fuse: bool = True
    quantization: str = DEFAULT_QUANT_MODE
    compare_quantization: bool = True
    latency_runs: int = BENCH_LATENCY_RUNS


def verification_texts(config: BuildConfig) -> List[str]:
    """Check sentences in 18 languages plus a few route dev texts per language."""
    from rasa_intent_student.factory.sentences import check_sentences
    from rasa_intent_student.factory.vocab import route_texts

    texts = check_sentences() + list(config.extra_sentences)
    for lang in config.languages:
        texts += route_texts(config.route_dir, "dev", lang)[:DEV_TEXTS_PER_LANGUAGE]
    return texts


def count_parameters(model: Any) -> int:
    """Parameters of a Hugging Face encoder, pooler excluded."""
    # The pooler is never used by the student graph; do not count it.
    return sum(p.numel() for n, p in model.named_parameters() if not n.startswith("pooler."))


def build_student(config: BuildConfig) -> Dict[str, Any]:
    """Run the pipeline and write the student directory. Returns the metrics written to student.json."""
    from rasa_intent_student.factory.card import make_manifest, write_card
    from rasa_intent_student.language_offsets import fit_student_offsets
    from rasa_intent_student.manifest import StudentManifest, seal_student
    from rasa_intent_student.routes import available_languages
    from rasa_intent_student.factory.export import (
        attention_shape,
        check_parity,
        export_onnx,
        fuse_onnx,
        make_feeds,
        onnx_forward,
        torch_forward,
    )
    from rasa_intent_student.factory.parallel import DIALOGUE_DIRS
    from rasa_intent_student.factory.prune import keep_layers, prune_vocab
    from rasa_intent_student.factory.quantize import mean_cosine, quantize_int8
    from rasa_intent_student.factory.sentences import check_sentences, translation_matches
    from rasa_intent_student.factory.stdir import save_st_student
    from rasa_intent_student.factory.teacher import load_teacher
    from rasa_intent_student.factory.vocab import choose_pieces, unk_rates

    if config.quantization not in QUANT_MODES:
        raise StudentError(f"Unknown quantization mode {config.quantization!r}. Valid modes: {list(QUANT_MODES)}.")
    unknown = [s for s in config.dialogue_sources if s not in DIALOGUE_DIRS]
    if unknown:
        raise StudentError(f"Unknown dialogue_sources {unknown}. Valid: {list(DIALOGUE_DIRS)}.")
    if config.dialogue_min_count < 1:
        raise StudentError(f"dialogue_min_count={config.dialogue_min_count} must be >= 1 (occurrences in the dialogue messages).")
    start = time.time()
    output, work = Path(config.output), Path(config.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    teacher = load_teacher(config.teacher, work, prefix=config.prefix)
    model, pooling, prefix = teacher.model, teacher.pooling, teacher.prefix
    texts = verification_texts(config)
    teacher_feeds = make_feeds(teacher.tokenizer_path, texts, prefix, config.max_seq_length)
    teacher_sentence = torch_forward(model, pooling, teacher_feeds)[SENTENCE_OUTPUT]
    teacher_layers, teacher_params = model.config.num_hidden_layers, count_parameters(model)
    teacher_vocab, dim = model.get_input_embeddings().weight.shape

    keep_layers(model, list(config.layers))
    tokenizer_json = json.loads(teacher.tokenizer_path.read_text(encoding="utf-8"))
    n_pieces = len(tokenizer_json["model"]["vocab"])
    vocab_report: Dict[str, Any] = {}
    if config.vocab_size and config.vocab_size < n_pieces:
        keep, vocab_report = choose_pieces(
            teacher.tokenizer_path, config.vocab_size, config.languages, config.route_dir, prefix, config.words_per_language,
            config.dialogue_sources, config.dialogue_min_count,
        )
    else:  # keep every piece; rows past the tokenizer's pieces are never looked up
        keep = list(range(n_pieces))
    tokenizer_json = prune_vocab(model, tokenizer_json, keep)
    st_dir = save_st_student(model, tokenizer_json, work / FP32_ST_DIR, prefix, config.max_seq_length)
    student_tokenizer = st_dir / TOKENIZER_FILE

    fp32_path = export_onnx(model, work / FP32_ONNX, pooling)
    feeds = make_feeds(student_tokenizer, texts, prefix, config.max_seq_length)
    export_diff = check_parity(model, fp32_path, feeds, pooling)
    graph: Dict[str, Any] = {"fused": bool(config.fuse), "nodes": {"export_fp32": node_count(fp32_path)}}
    graph_path, max_diff = fp32_path, export_diff
    if config.fuse:
        graph_path = work / FUSED_ONNX
        graph["fusions"] = fuse_onnx(fp32_path, graph_path, **attention_shape(model))
        graph["nodes"]["fused_fp32"] = node_count(graph_path)
        # The fused kernels (one softmax over a mask index, fused LayerNorms) stay within the same atol.
        max_diff = check_parity(model, graph_path, feeds, pooling)
        graph["export_max_abs_diff"], graph["fused_max_abs_diff"] = export_diff, max_diff

    staging = work / "staging"
    if staging.exists():
        shutil.rmtree(staging)
    int8_path = quantize_int8(graph_path, staging / MODEL_FILE, config.quantization)
    fp32_out, int8_out = onnx_forward(graph_path, feeds), onnx_forward(int8_path, feeds)
    int8_fid = mean_cosine(fp32_out, int8_out, feeds[ATTENTION_MASK])
    if int8_fid["sentence_cosine_mean"] < config.cosine_floor:
        raise StudentError(
            f"INT8 student keeps only {int8_fid['sentence_cosine_mean']:.4f} mean cosine to FP32 "
            f"(floor {config.cosine_floor}); check the quantization settings or lower --cosine-floor."
        )
    record_int8_graph(graph, int8_path, config.quantization)
    graph.update(
        compare_graphs(
            config, graph_path, fp32_path, int8_path, int8_fid, feeds, fp32_out, student_tokenizer, prefix, texts, work
        )
    )
    vs_teacher = row_cosines(int8_out[SENTENCE_OUTPUT], teacher_sentence)
    n_check = len(check_sentences())  # verification_texts starts with them

    shutil.copyfile(student_tokenizer, staging / TOKENIZER_FILE)
    dropped = int(teacher_vocab) - len(keep)
    fp32_size, int8_size = fp32_path.stat().st_size, int8_path.stat().st_size
    graph["bytes"] = int8_size
    metrics: Dict[str, Any] = {
        "teacher_layers": int(teacher_layers),
        "teacher_parameters": int(teacher_params),
        "teacher_vocab_size": int(teacher_vocab),
        "parameters": int(count_parameters(model)),
        "sizes": {
            "fp32": fp32_size,
            "int8": int8_size,
            "fp32_full_vocab": fp32_size + dropped * int(dim) * 4,
            "int8_full_vocab": int8_size + dropped * int(dim),
        },
        "fidelity": {
            "sentences": len(texts),
            "onnx_fp32_max_abs_diff": max_diff,
            "int8_vs_fp32_cosine_mean": round(int8_fid["sentence_cosine_mean"], 5),
            "int8_vs_fp32_cosine_min": round(int8_fid["sentence_cosine_min"], 5),
            "int8_vs_fp32_centered_cosine_mean": round(int8_fid["centered_cosine_mean"], 5),
            "int8_vs_fp32_token_cosine_mean": round(int8_fid["token_cosine_mean"], 5),
            "int8_vs_build_source_cosine_mean": round(float(vs_teacher.mean()), 5),
            "int8_vs_build_source_cosine_min": round(float(vs_teacher.min()), 5),
            "translation_matches": {
                "of": n_check,
                "teacher": translation_matches(teacher_sentence[:n_check]),
                "fp32_student": translation_matches(fp32_out[SENTENCE_OUTPUT][:n_check]),
                "int8_student": translation_matches(int8_out[SENTENCE_OUTPUT][:n_check]),
            },
        },
        "unk_rate": unk_rates(
            student_tokenizer, teacher.tokenizer_path, config.languages, config.route_dir, config.words_per_language
        )
        if vocab_report
        else {},
        "vocab_choice": vocab_report,
        "graph": graph,
        "machine": describe_machine(),
        "teacher_weights": E5_WEIGHTS_NOTE if config.teacher == E5_OFFLINE_TEACHER else str(teacher.directory),
    }
    metrics["build_seconds"] = round(time.time() - start, 1)
    metrics["build_command"] = config.command or default_command(config)
    teacher_name, layers_kept = record_distillation(metrics, Path(teacher.directory), teacher.source, config.layers)
    manifest = make_manifest(
        dim=int(dim),
        teacher=teacher_name,
        layers_kept=layers_kept,
        vocab_size=len(keep),
        languages=config.languages if vocab_report else (),
        pooling=pooling,
        prefix=prefix,
        max_seq_length=config.max_seq_length,
        metrics=metrics,
    )
    manifest.save(staging)
    seal_student(staging)  # SHA-256 of model.onnx and tokenizer.json into student.json
    # The language offsets are fitted with the finished student and sealed beside it.
    offset_languages = [lang for lang in config.languages if lang in available_languages("train", config.route_dir)]
    if len(offset_languages) >= 2:
        fit_student_offsets(staging, offset_languages, config.route_dir)
    write_card(staging, StudentManifest.load(staging))
    _replace_dir(staging, output)
    logger.info("Student written to %s (%.1f MB) in %.0f s", output, int8_size / 1e6, metrics["build_seconds"])
    return metrics


def _replace_dir(staging: Path, output: Path) -> None:
    """Swap the new student in; files of the old directory that the build does not write are kept."""
    output.mkdir(parents=True, exist_ok=True)
    for item in staging.iterdir():
        shutil.move(str(item), str(output / item.name))
    staging.rmdir()

