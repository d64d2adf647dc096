"""``rasa-intent-student evaluate``: score the student + logistic-regression router on labelled data.

The data is JSONL (docs/ROUTES.md) or Rasa NLU YAML with any intents (``--train nlu.yml --data test.yml``).
Needs the ``[eval]`` extra (scikit-learn; matplotlib for ``--plots``; PyYAML for YAML); a missing one
is reported before any work, naming the extra.
"""
import argparse
import dataclasses
import json
from pathlib import Path
from typing import Optional

from rasa_intent_student.errors import require_extra


@dataclasses.dataclass
class EvaluateArgs:
    data: Path
    train: Optional[Path] = None  # None: the shipped train split
    model: Optional[Path] = None  # None: the embedded default student
    json: bool = False
    plots: Optional[Path] = None
    threads: Optional[int] = None
    errors: Optional[Path] = None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="accuracy and macro-F1 of student embeddings + logistic regression on labelled JSONL or Rasa NLU YAML",
        description="Train a router (student embeddings + logistic regression) on --train and score it on --data.",
    )
    parser.add_argument(
        "--data", type=Path, required=True,
        help="test data: JSONL (docs/ROUTES.md format), Rasa NLU YAML (any intents), or a directory of either",
    )
    parser.add_argument(
        "--train", type=Path, default=None,
        help="training data, same formats (default: the shipped route train split); a Rasa bot passes its nlu.yml",
    )
    parser.add_argument("--model", type=Path, default=None, help="student model directory (default: the embedded student)")
    parser.add_argument("--json", action="store_true", help="also print the results as one JSON object on the last line")
    parser.add_argument("--plots", type=Path, default=None, metavar="DIR", help="write per-language and confusion PNGs here")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    parser.add_argument(
        "--errors", type=Path, default=None, metavar="FILE",
        help="write the misclassified messages here as JSON, like Rasa's intent_errors.json",
    )
    parser.set_defaults(func=run)


def _is_yaml(path: Optional[Path]) -> bool:
    return path is not None and (path.suffix in (".yml", ".yaml") or (path.is_dir() and not any(path.glob("*.jsonl"))))


def run(ns: argparse.Namespace) -> int:
    args = EvaluateArgs(ns.data, ns.train, ns.model, ns.json, ns.plots, ns.threads, ns.errors)
    require_extra(["sklearn"], "`evaluate` (the logistic-regression router)")
    if args.plots:
        require_extra(["matplotlib"], "--plots")
    if _is_yaml(args.data) or _is_yaml(args.train):
        require_extra(["yaml"], "Rasa NLU YAML data")

    from rasa_intent_student.encoder import StudentEncoder
    from rasa_intent_student.evaluation.data import check_known_labels, load_examples, misclassified, write_json
    from rasa_intent_student.evaluation.intent import build_report
    from rasa_intent_student.evaluation.router import LogisticRouter
    from rasa_intent_student.evaluation.tables import format_intent_report
    from rasa_intent_student.routes import load_routes

    test = load_examples(args.data)
    train = load_examples(args.train) if args.train else load_routes("train")
    check_known_labels(test, sorted({e.label for e in train}))
    encoder = StudentEncoder.load(args.model, threads=args.threads)
    router = LogisticRouter().fit(encoder.encode([e.text for e in train]), [e.label for e in train])
    probabilities = router.predict_proba(encoder.encode([e.text for e in test]))
    labels = router.labels
    report = build_report(test, [labels[i] for i in probabilities.argmax(axis=1)], labels)
    report.meta = {"model": str(encoder.model_dir), "train_n": len(train), "quantization": encoder.manifest.quantization}
    print(f"model: {report.meta['model']}  train: {report.meta['train_n']} rows  test: {args.data} ({report.n} rows)\n")
    print(format_intent_report(report))
    if args.errors:
        errors = misclassified(test, labels, probabilities)
        print(f"wrote {len(errors)} misclassified messages to {write_json(errors, args.errors)}")
    if args.plots:
        from rasa_intent_student.evaluation.plots import plot_report

        for path in plot_report(report, args.plots):
            print(f"wrote {path}")
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    return 0
