"""Weight averaging of distilled students ("model soup", Wortsman et al. 2022).

Students trained from the same first stage with different losses can be averaged tensor by tensor;
the result is a ``build --teacher`` source like each of them.

    python -m rasa_intent_student.factory.soup OUTPUT RUN_A/student-st RUN_B/student-st
"""
import argparse
import json
import shutil
from pathlib import Path
from typing import Optional, Sequence

from rasa_intent_student.constants import DISTILL_RECORD_FILE
from rasa_intent_student.errors import StudentError

WEIGHTS_FILE = "model.safetensors"


def average_students(sources: Sequence[Path], output: Path) -> Path:
    """Write the uniform average of ``sources`` (sentence-transformers student directories) to ``output``.

    Everything but the weights is copied from the first source; its distillation record gains
    ``averaged_from``, so the card says what was averaged.
    """
    from safetensors.torch import load_file, save_file

    sources = [Path(s) for s in sources]
    if len(sources) < 2:
        raise StudentError(f"Averaging needs at least 2 students, got {len(sources)}: {[str(s) for s in sources]}.")
    missing = [str(s / WEIGHTS_FILE) for s in sources if not (s / WEIGHTS_FILE).is_file()]
    if missing:
        raise StudentError(f"No student weights at {missing}; pass RUN/student-st directories written by `distill`.")
    states = [load_file(str(s / WEIGHTS_FILE)) for s in sources]
    shapes = {k: tuple(v.shape) for k, v in states[0].items()}
    for source, state in zip(sources[1:], states[1:]):
        if {k: tuple(v.shape) for k, v in state.items()} != shapes:
            raise StudentError(f"{source} does not have the tensors and shapes of {sources[0]}; only students of one "
                               "architecture and vocabulary (the same first stage) can be averaged.")
    average = {k: (sum(s[k].double() for s in states) / len(states)).to(v.dtype).contiguous() for k, v in states[0].items()}
    if output.exists():
        shutil.rmtree(output)
    shutil.copytree(sources[0], output)
    save_file(average, str(output / WEIGHTS_FILE), metadata={"format": "pt"})
    record_path = output / DISTILL_RECORD_FILE
    if record_path.is_file():
        record = json.loads(record_path.read_text(encoding="utf-8"))
        record["averaged_from"] = [str(s) for s in sources]
        record_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return output


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("output", type=Path, help="the averaged student directory to write")
    parser.add_argument("sources", type=Path, nargs="+", help="RUN/student-st directories of one first stage")
    args = parser.parse_args(argv)
    print(average_students(args.sources, args.output))


if __name__ == "__main__":
    main()
