"""``rasa-intent-student language-offsets``: fit (or remove) a student's language offsets (``language_offsets.py``)."""
import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "language-offsets",
        help="fit a student's per-language offsets, which encode then removes (translations land closer)",
        description="Encode the package's route TRAIN examples with the student, store each language's mean "
        "embedding as language_offsets.npy beside the model, name it in student.json and record its checksum. "
        "From then on `encode` removes each text's language offset unless asked for raw vectors. "
        "`build` does this for every student it writes.",
    )
    parser.add_argument("model", type=Path, metavar="MODEL_DIR", help="student model directory")
    parser.add_argument("--languages", nargs="+", default=None, metavar="LANG",
                        help="languages to fit (default: all 18 of the route examples)")
    parser.add_argument("--remove", action="store_true", help="remove the offsets instead: encode is raw again")
    parser.set_defaults(func=run)


def run(ns: argparse.Namespace) -> int:
    from rasa_intent_student.language_offsets import drop_student_offsets, fit_student_offsets

    if ns.remove:
        drop_student_offsets(ns.model)
        print(f"{ns.model}: language offsets removed; encode returns raw embeddings.")
        return 0
    offsets = fit_student_offsets(ns.model, ns.languages or ())
    print(f"{ns.model}: language offsets of {len(offsets.languages)} languages written "
          f"({', '.join(offsets.languages)}); encode removes them by default.")
    return 0
