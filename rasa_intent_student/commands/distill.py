"""``rasa-intent-student distill``: train the pruned student towards the teacher's embeddings."""
import argparse
from pathlib import Path

from rasa_intent_student.constants import (
    DISTILL_DJANGO_PER_LANGUAGE,
    DISTILL_TEXTS_PER_LANGUAGE,
    DEFAULT_LAYERS_KEPT,
    DISTILL_MAX_MINUTES,
    DISTILL_MAX_SEQ_LENGTH,
    DISTILL_OUTPUT_DIR,
    E5_OFFLINE_TEACHER,
    LANGUAGES,
)
from rasa_intent_student.routes import check_languages


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "distill",
        help="distill the pruned 2-layer student from the teacher on a multilingual corpus (needs the [factory] extra)",
        description="Build the offline corpus, cache the teacher's embeddings, train the kept layers with "
        "embedding MSE + in-batch pairwise-cosine loss on the CPU, checkpoint, and write the distilled "
        "student as a sentence-transformers directory (then: rasa-intent-student build --teacher OUTPUT/student-st --layers 0 1).",
    )
    p.add_argument("--output", type=Path, default=DISTILL_OUTPUT_DIR, help="run directory (corpus, cache, ckpt.pt, student-st/)")
    p.add_argument("--teacher", default=E5_OFFLINE_TEACHER, help=f"'{E5_OFFLINE_TEACHER}' or a local sentence-transformers directory")
    p.add_argument("--layers", type=int, nargs="+", default=list(DEFAULT_LAYERS_KEPT), help="teacher layers the student keeps")
    p.add_argument("--max-steps", type=int, default=0, help="optimizer steps (0: size the run to --max-minutes from the measured speed)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--warmup-steps", type=int, default=50, help="linear warmup; with --max-steps 0 the speed is measured over it")
    p.add_argument("--mse-weight", type=float, default=0.0, help="weight of the embedding MSE loss (0: best measured on the intent benchmark)")
    p.add_argument("--pair-weight", type=float, default=30.0, help="weight of the in-batch pairwise-cosine loss")
    p.add_argument("--matryoshka", type=int, nargs="*", default=[], help="embedding prefixes to average the loss over, e.g. 384 256 128")
    p.add_argument("--max-seq-length", type=int, default=DISTILL_MAX_SEQ_LENGTH)
    p.add_argument("--eval-interval", type=int, default=250)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--max-minutes", type=float, default=DISTILL_MAX_MINUTES, help="training wall time: stop and checkpoint after it (0: no limit)")
    p.add_argument("--texts-per-language", type=int, default=DISTILL_TEXTS_PER_LANGUAGE)
    p.add_argument("--max-django-per-language", type=int, default=DISTILL_DJANGO_PER_LANGUAGE, help="cap on Django catalog strings per language (0: none)")
    p.add_argument("--languages", nargs="+", default=list(LANGUAGES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT/ckpt.pt with its stored config")
    p.add_argument("--describe", type=Path, default=None, metavar="STUDENT_DIR", help="no training: mark a student built "
                   "from OUTPUT/student-st as distilled (student.json teacher/layers, README.md distillation section)")
    p.add_argument("--quality", type=Path, default=None, help="with --describe: `bench --json` output whose quality results go in the card")
    p.add_argument("--quality-reference", default="teacher-fp32", help="with --describe: model name the quality ratios are taken against")
    p.add_argument("--command", default="", help="with --describe: the rebuild commands written to the card")
    p.add_argument("--quality-command", default="", help="with --describe: the command that measured --quality, for the card")
    p.set_defaults(func=run)


def describe(args: argparse.Namespace) -> int:
    from rasa_intent_student.factory.distill_card import describe_distilled, load_bench_quality

    quality = load_bench_quality(args.quality) if args.quality else None
    d = describe_distilled(args.describe, args.output, args.command, quality, args.quality_reference, args.quality_command)
    print(f"{args.describe}: distilled {d['steps']} steps, held-out cosine {d['held_out_cosine'][0]:.4f} -> {d['held_out_cosine'][1]:.4f}")
    return 0


def run(args: argparse.Namespace) -> int:
    from rasa_intent_student.factory.corpus import CorpusConfig
    from rasa_intent_student.factory.distill import DistillConfig, distill

    if args.describe:
        return describe(args)

    check_languages(args.languages)
    config = DistillConfig(
        output=str(args.output),
        teacher=args.teacher,
        layers=tuple(args.layers),
        max_seq_length=args.max_seq_length,
        batch_size=args.batch_size,
        max_steps=args.max_steps,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        mse_weight=args.mse_weight,
        pair_weight=args.pair_weight,
        matryoshka_dims=tuple(args.matryoshka),
        eval_interval=args.eval_interval,
        threads=args.threads,
        max_minutes=args.max_minutes,
        seed=args.seed,
        corpus=CorpusConfig(languages=tuple(args.languages), texts_per_language=args.texts_per_language,
                            max_django_per_language=args.max_django_per_language, seed=args.seed),
    )
    result = distill(config, resume=args.resume, log=print)
    start, end = result["eval_start"], result["eval"]
    corpus = result["corpus"]
    rows = [
        ("corpus", f"{corpus['texts']} texts {corpus['by_source']}"),
        ("steps", f"{result['step']} ({result['steps_per_s']:.2f} steps/s, {result['seconds']:.0f} s)"),
        ("held-out cosine to teacher", f"{start['cosine']:.4f} -> {end['cosine']:.4f}"),
        ("held-out mse (2 - 2 cos)", f"{start['mse']:.4f} -> {end['mse']:.4f}"),
        ("held-out pairwise loss", f"{start['pair']:.5f} -> {end['pair']:.5f}"),
        ("distilled student", result["student_dir"]),
        ("next", f"rasa-intent-student build --teacher {result['student_dir']} --layers 0 1 --output DIR"),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    return 0
