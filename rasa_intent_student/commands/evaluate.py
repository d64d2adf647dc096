"""``rasa-intent-student evaluate``: score the student + logistic-regression router on labelled data."""
import argparse
import dataclasses
import json
from pathlib import Path
from typing import Optional


@dataclasses.dataclass
class EvaluateArgs:
    data: Path
    train: Optional[Path] = None  # None: the shipped train split
    model: Optional[Path] = None  # None: the embedded default student
    json: bool = False
    plots: Optional[Path] = None
    threads: Optional[int] = None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="accuracy and macro-F1 of student embeddings + logistic regression on labelled JSONL",
        description="Train a router (student embeddings + logistic regression) on --train and score it on --data.",
    )
    parser.add_argument("--data", type=Path, required=True, help="JSONL file (shared/LABELS.md format) or a directory of *.jsonl")
    parser.add_argument("--train", type=Path, default=None, help="training JSONL file or directory (default: the shipped train split)")
    parser.add_argument("--model", type=Path, default=None, help="student model directory (default: the embedded student)")
    parser.add_argument("--json", action="store_true", help="also print the results as one JSON object on the last line")
    parser.add_argument("--plots", type=Path, default=None, metavar="DIR", help="write per-language and confusion PNGs here")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    parser.set_defaults(func=run)


def run(ns: argparse.Namespace) -> int:
    from rasa_intent_student.evaluation.data import load_examples
    from rasa_intent_student.evaluation.intent import evaluate_router
    from rasa_intent_student.evaluation.tables import format_intent_report
    from rasa_intent_student.routes import load_routes

    args = EvaluateArgs(ns.data, ns.train, ns.model, ns.json, ns.plots, ns.threads)
    test = load_examples(args.data)
    train = load_examples(args.train) if args.train else load_routes("train")
    report = evaluate_router(train, test, model_dir=args.model, threads=args.threads)
    print(f"model: {report.meta['model']}  train: {report.meta['train_n']} rows  test: {args.data} ({report.n} rows)\n")
    print(format_intent_report(report))
    if args.plots:
        from rasa_intent_student.evaluation.plots import plot_report

        for path in plot_report(report, args.plots):
            print(f"wrote {path}")
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    return 0
