"""``rasa-intent-student reference``: the FP32 reference encoders that ``bench`` compares the student with."""
import argparse
from pathlib import Path

from rasa_intent_student.constants import (
    ARTIFACTS_DIR,
    FACTORY_WORK_DIR,
    REFERENCE_STUDENT_FP32_DIR,
    REFERENCE_TEACHER_DIR,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "reference",
        help="export the FP32 teacher and FP32 student under artifacts/ for `bench` (needs the [factory] extra)",
        description=f"Write the 12-layer teacher (rebuilt offline) to {REFERENCE_TEACHER_DIR} and the FP32 graph the "
        f"shipped student was quantized from to {REFERENCE_STUDENT_FP32_DIR}, as student directories, so that `bench` "
        "measures every model with the same runtime code. Nothing is downloaded.",
    )
    p.add_argument("--work-dir", type=Path, default=FACTORY_WORK_DIR,
                   help="the factory's work directory, with the FP32 student of the last build (default: %(default)s)")
    p.add_argument("--teacher-only", action="store_true",
                   help="export only the teacher (an installed package has no factory build to take the FP32 student from)")
    p.add_argument("--st", nargs=2, metavar=("DIR", "NAME"),
                   help=f"also export a local sentence-transformers model as {ARTIFACTS_DIR}/NAME")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rasa_intent_student.constants import E5_OFFLINE_TEACHER
    from rasa_intent_student.factory.reference import export_st_model, export_student_fp32

    print(export_st_model(E5_OFFLINE_TEACHER, REFERENCE_TEACHER_DIR, args.work_dir))
    if not args.teacher_only:
        print(export_student_fp32(REFERENCE_STUDENT_FP32_DIR, args.work_dir))
    if args.st:
        print(export_st_model(args.st[0], ARTIFACTS_DIR / args.st[1], args.work_dir))
    return 0
