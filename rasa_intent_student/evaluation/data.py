"""Labelled utterances for evaluation: one JSONL file or a directory of them."""
from pathlib import Path
from typing import List, Sequence, Union

from rasa_intent_student.routes import RouteExample, read_jsonl


def load_examples(path: Union[str, Path]) -> List[RouteExample]:
    """Read a JSONL file in the shared/LABELS.md format, or every ``*.jsonl`` in a directory (sorted by name).

    Raises:
        FileNotFoundError: the path does not exist, or a directory holds no ``*.jsonl``.
        ValueError: a malformed row; the message names the file and line number.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise FileNotFoundError(f"No *.jsonl files in directory {path}; pass a JSONL file or a directory of them.")
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(f"Data path {path} does not exist; pass a JSONL file or a directory of *.jsonl files.")
    examples: List[RouteExample] = []
    for file in files:
        examples.extend(read_jsonl(file))
    if not examples:
        raise ValueError(f"{path} holds no examples (only blank lines); add rows like {{\"text\", \"label\", \"lang\"}}.")
    return examples


def check_known_labels(test: Sequence[RouteExample], train_labels: Sequence[str], where: str = "--data") -> None:
    """Reject test labels the router never saw in training, listing the training labels."""
    known = set(train_labels)
    unknown = sorted({e.label for e in test} - known)
    if unknown:
        count = sum(e.label in unknown for e in test)
        raise ValueError(
            f"Labels {unknown} in {where} ({count} rows) do not occur in the training data, which has labels "
            f"{sorted(known)}. Add training examples for them or remove those rows."
        )
