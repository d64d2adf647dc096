"""``rasa-intent-student encode``: texts in (arguments, a file or stdin, one per line), vectors out (.npy)."""
import argparse
import sys
from pathlib import Path
from typing import List

from rasa_intent_student.errors import StudentError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "encode",
        help="encode texts into sentence embeddings and save them as a .npy array",
        description="Encode texts with the student and write a float32 array of shape (n, dim) to --output. "
        "Texts come from the arguments, or from --input (a UTF-8 file, one text per line; '-' is stdin), "
        "or from stdin when neither is given. Row i is the i-th text; empty lines are texts too.",
    )
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="texts to encode")
    parser.add_argument("--input", "-i", default=None, metavar="FILE", help="file with one text per line ('-': stdin)")
    parser.add_argument("--output", "-o", type=Path, required=True, metavar="OUT.npy", help="where to write the array")
    parser.add_argument("--model", type=Path, default=None, help="student model directory (default: the embedded student)")
    parser.add_argument("--prompt", default=None, help="text put before each input (default: the student's prefix, "
                        "'query: '; use 'passage: ' for documents to retrieve)")
    parser.add_argument("--no-normalize", action="store_true", help="keep raw pooled vectors (default: unit length)")
    parser.add_argument("--raw", action="store_true", help="keep each text's language offset (default: removed when the "
                        "student has language offsets, as the default student does)")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per ONNX run")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: all cores)")
    parser.add_argument("--progress", action="store_true", help="show a progress bar (needs tqdm)")
    parser.set_defaults(func=run)


def split_lines(content: str) -> List[str]:
    """One text per line; a final newline does not start another text."""
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_texts(ns: argparse.Namespace) -> List[str]:
    if ns.texts and ns.input:
        raise StudentError("Give texts either as arguments or with --input, not both.")
    if ns.texts:
        return list(ns.texts)
    if ns.input and ns.input != "-":
        path = Path(ns.input)
        if not path.is_file():
            raise FileNotFoundError(f"--input {path} does not exist.")
        # Invalid UTF-8 becomes U+FFFD rather than failing the whole file.
        return split_lines(path.read_text(encoding="utf-8", errors="replace"))
    if ns.input is None and sys.stdin.isatty():
        raise StudentError("No texts: give them as arguments, with --input FILE, or on stdin (one per line).")
    return split_lines(sys.stdin.read())


def run(ns: argparse.Namespace) -> int:
    import numpy as np

    from rasa_intent_student.encoder import StudentEncoder

    if ns.batch_size < 1:
        raise StudentError(f"--batch-size {ns.batch_size} is invalid; use a positive integer.")
    output = ns.output if ns.output.suffix == ".npy" else ns.output.with_name(ns.output.name + ".npy")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"--output {output}: the directory {output.parent} does not exist.")
    texts = read_texts(ns)
    encoder = StudentEncoder.load(ns.model, threads=ns.threads)
    vectors = encoder.encode(
        texts, batch_size=ns.batch_size, show_progress_bar=ns.progress,
        normalize_embeddings=False if ns.no_normalize else None, prompt=ns.prompt, language_neutral=False if ns.raw else None,
    )
    np.save(output, vectors.astype(np.float32, copy=False))
    print(f"wrote {vectors.shape[0]} vectors of dim {vectors.shape[1]} (float32) to {output}", file=sys.stderr)
    return 0
