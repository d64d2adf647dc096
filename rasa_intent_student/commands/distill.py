"""``rasa-intent-student distill``: train the pruned student towards the teacher's embeddings.

The flags are generated from ``DistillConfig`` and ``CorpusConfig`` fields, so each default lives there.
"""
import argparse
from dataclasses import MISSING, asdict, fields
from pathlib import Path
from typing import Any, Dict

from rasa_intent_student.errors import StudentError

CORPUS_FLAGS = ("languages", "texts_per_language", "max_django_per_language", "parallel_sources", "django_pairs_per_language")
SKIPPED = ("corpus", "seed")  # seed is shared by the run and its corpus: one flag below


def _add_field(parser: argparse.ArgumentParser, f: Any, help: str = "") -> None:
    default = f.default if f.default is not MISSING else f.default_factory()
    help = help.replace("%", "%%")  # argparse formats help strings
    flag = "--" + f.name.replace("_", "-")
    if isinstance(default, tuple):
        kind = type(default[0]) if default else int
        parser.add_argument(flag, type=kind, nargs="*", default=list(default), help=f"{help} (default: {' '.join(map(str, default)) or 'none'})")
    else:
        parser.add_argument(flag, type=type(default), default=default, help=f"{help} (default: {default})")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from rasa_intent_student.factory.corpus import CorpusConfig
    from rasa_intent_student.factory.distill.config import DistillConfig
    from rasa_intent_student.factory.parallel import PARALLEL_SOURCES

    p = subparsers.add_parser(
        "distill",
        help="distill the pruned 2-layer student from the teacher on a multilingual corpus (needs the [factory] extra)",
        description="Build the offline corpus and parallel pairs, cache the teacher's embeddings, train the kept layers "
        "(absolute target + in-batch pairwise cosine + translation target), checkpoint, and write the distilled student "
        "as a sentence-transformers directory (then: rasa-intent-student build --teacher OUTPUT/student-st --layers 0 1).",
    )
    for f in fields(DistillConfig):
        if f.name not in SKIPPED:
            _add_field(p, f, f.metadata.get("help", ""))
    corpus_help = {"languages": "ISO 639-1 codes of the corpus", "texts_per_language": "monolingual corpus texts per language",
                   "max_django_per_language": "cap on Django catalog strings per language (0: none)",
                   "parallel_sources": f"parallel pairs added to the corpus, of {', '.join(PARALLEL_SOURCES)}", "django_pairs_per_language": "cap on Django translation pairs per language"}
    for f in fields(CorpusConfig):
        if f.name in CORPUS_FLAGS:
            _add_field(p, f, corpus_help[f.name])
    p.add_argument("--seed", type=int, default=0, help="data order, held-out split, corpus n-grams (default: 0)")
    p.add_argument("--corpus-seed", type=int, default=None, help="corpus n-grams and Django pairs only (default: --seed); "
                   "--seed 1 --corpus-seed 0 changes only the training's randomness and reuses the corpus's teacher cache, "
                   "to measure the spread over training seeds")
    p.add_argument("--stop-at-step", type=int, default=None, metavar="N", help="checkpoint and stop at step N, the learning-rate "
                   "schedule still that of --max-steps (--resume continues it)")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT/ckpt.pt with its stored config")
    p.add_argument("--write-pack", type=Path, default=None, metavar="DIR", help="no training: write the prepared rows and a compact "
                   "teacher to DIR, to train elsewhere (python -m rasa_intent_student.factory.distill.sweep)")
    p.add_argument("--assemble", action="store_true", help="no training: turn OUTPUT/student-state.safetensors (a run from a pack) "
                   "into OUTPUT/student-st with the full teacher")
    p.add_argument("--describe", type=Path, default=None, metavar="STUDENT_DIR", help="no training: add the results of "
                   "`bench --json` (--quality FILE) of a built student to its student.json and model card")
    p.add_argument("--quality", type=Path, default=None, help="with --describe: `bench --json` output (few-shot quality and fidelity protocols)")
    p.add_argument("--quality-reference", default="teacher-fp32", help="with --describe: model name the few-shot ratios are taken against")
    p.add_argument("--quality-command", default="", help="with --describe: the command that measured --quality, for the card")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    from rasa_intent_student.factory.corpus import CorpusConfig
    from rasa_intent_student.factory.distill.config import DistillConfig
    from rasa_intent_student.routes import check_languages

    check_languages(args.languages)
    values: Dict[str, Any] = {f.name: getattr(args, f.name) for f in fields(DistillConfig) if f.name not in SKIPPED}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    corpus = {name: tuple(getattr(args, name)) if isinstance(getattr(args, name), list) else getattr(args, name) for name in CORPUS_FLAGS}
    corpus_seed = args.seed if args.corpus_seed is None else args.corpus_seed
    return DistillConfig(**values, seed=args.seed, corpus=CorpusConfig(**corpus, seed=corpus_seed))


def describe(args: argparse.Namespace) -> int:
    from rasa_intent_student.evaluation.bench_output import load_bench_protocols, load_bench_quality
    from rasa_intent_student.factory.distill_card import describe_results

    if args.quality is None:
        raise StudentError("--describe needs --quality FILE: the output of `rasa-intent-student bench --json ... > FILE`.")
    describe_results(args.describe, load_bench_quality(args.quality), load_bench_protocols(args.quality),
                     args.quality_reference, args.quality_command)
    print(f"{args.describe}: results of {args.quality} written to student.json and README.md")
    return 0


def run(args: argparse.Namespace) -> int:
    from rasa_intent_student.factory.distill import assemble_student, distill

    if args.describe:
        return describe(args)
    if args.assemble:
        print(f"distilled student: {assemble_student(Path(args.output))}")
        return 0
    config = config_from_args(args)
    config.check()
    if args.write_pack:
        from rasa_intent_student.evaluation.crosslingual import protocol_texts
        from rasa_intent_student.evaluation.quality import default_corpus
        from rasa_intent_student.factory.distill.pack import write_pack
        from rasa_intent_student.constants import BENCH_CACHE_DIR
        import json

        corpus = default_corpus(config.corpus.languages, BENCH_CACHE_DIR / "quality")
        meta = write_pack(config, args.write_pack, protocol_texts(corpus, config.corpus.languages))
        (args.write_pack / "ha_corpus.json").write_text(json.dumps(corpus, ensure_ascii=False), encoding="utf-8")
        print(f"pack {args.write_pack}: {meta['manifest']['texts']} rows, {meta['vocab_rows']} vocabulary rows, pairs {meta['manifest']['parallel_pairs']}")
        return 0
    result = distill(config, resume=args.resume, stop_at_step=args.stop_at_step, log=print)
    start, end = result["eval_start"], result["eval"]
    corpus = result["corpus"]
    rows = [
        ("corpus", f"{corpus['texts']} texts {corpus['by_source']}"),
        ("parallel pairs", str(corpus.get("parallel_pairs", {}))),
        ("steps", f"{result['step']} ({result['steps_per_s']:.2f} steps/s, {result['seconds']:.0f} s)"),
        ("held-out cosine to teacher", f"{start['cosine']:.4f} -> {end['cosine']:.4f}"),
        ("held-out mse (2 - 2 cos)", f"{start['mse']:.4f} -> {end['mse']:.4f}"),
        ("held-out pairwise loss", f"{start['pair']:.5f} -> {end['pair']:.5f}"),
        ("held-out translation mse", f"{start.get('xling', float('nan')):.4f} -> {end.get('xling', float('nan')):.4f}"),
        ("held-out token error", f"{start.get('token', float('nan')):.4f} -> {end.get('token', float('nan')):.4f}"),
        ("distilled student", result["student_dir"]),
        ("next", f"rasa-intent-student build --teacher {result['student_dir']} --layers 0 1 --output DIR"),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    return 0
