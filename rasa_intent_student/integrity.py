"""Load-time checks of a student directory, before the encoder serves anything.

The SHA-256 of ``model.onnx`` and ``tokenizer.json`` against ``student.json`` (when it records
them), and ``student.json`` against the graph (inputs and outputs, ``dim``, ``max_seq_length``
within the position table, the tokenizer's vocabulary within the embedding table). Each failure
raises an ``IntegrityError`` that names the file. Needs only numpy, onnxruntime and tokenizers.
"""
import hashlib
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Iterator, Optional, Sequence, Set, Tuple, Union

import numpy as np

from rasa_intent_student.constants import (
    ATTENTION_MASK,
    INPUT_IDS,
    MANIFEST_FILE,
    MAX_SEQ_LENGTH_LIMIT,
    MODEL_FILE,
    SENTENCE_OUTPUT,
    STUDENT_FILES,
    TOKEN_OUTPUT,
    TOKEN_TYPE_IDS,
    TOKENIZER_FILE,
)
from rasa_intent_student.errors import IntegrityError, StudentError
from rasa_intent_student.manifest import StudentManifest

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

# Graph inputs the encoder knows how to feed.
KNOWN_INPUTS = (INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS)
# Lone UTF-16 surrogates: Python strings may hold them (from surrogateescape or broken JSON),
# the tokenizer refuses them. Each is replaced by U+FFFD, which keeps character offsets.
_SURROGATES = re.compile("[\ud800-\udfff]")
# Directories already warned about for lacking checksums (one warning per process each).
_UNSEALED_WARNED: Set[Path] = set()


def check_model_dir(path: Union[str, Path]) -> Path:
    """Return ``path`` as a Path if it holds every student file; else name what is missing."""
    directory = Path(path)
    if not directory.is_dir():
        raise FileNotFoundError(f"Student model directory {directory} does not exist.")
    for name in STUDENT_FILES:
        if not (directory / name).is_file():
            raise FileNotFoundError(
                f"{name} not found in {directory}. A student directory needs {list(STUDENT_FILES)}; "
                "rebuild it with `rasa-intent-student build` or point to another directory."
            )
    return directory


def repair_text(text: str) -> str:
    """``text`` with each lone surrogate (invalid Unicode) replaced by U+FFFD; same length."""
    return _SURROGATES.sub("\ufffd", text)


def verify_checksums(manifest: StudentManifest, directory: Path, files: Dict[Path, bytes]) -> None:
    """Check each file's bytes against the SHA-256 that ``manifest`` (of ``directory``) records for it.

    A manifest without checksums cannot be checked: that is a warning, once per directory and process.

    Raises:
        IntegrityError: a file's SHA-256 differs from the recorded one.
    """
    if not manifest.checksums:
        if directory.resolve() not in _UNSEALED_WARNED:
            _UNSEALED_WARNED.add(directory.resolve())
            logger.warning(
                f"{directory / MANIFEST_FILE} records no checksums, so damaged student files cannot be "
                "detected. Rebuild the student, or record them with rasa_intent_student.manifest.seal_student."
            )
        return
    for path, data in files.items():
        if path.name in manifest.checksums:
            manifest.verify_file(path, hashlib.sha256(data).hexdigest())


def read_tokenizer(data: bytes, path: Path) -> "Tokenizer":
    """The tokenizer serialized in ``data`` (the bytes of ``path``)."""
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_buffer(data)
    except Exception as e:  # tokenizers raises a bare Exception on bad JSON
        raise IntegrityError(f"Could not read {path}: {e}. The file is corrupt; rebuild or restore it.") from e


def open_session(data: bytes, path: Path, threads: Optional[int] = None) -> "onnxruntime.InferenceSession":
    """A CPU inference session of the graph in ``data`` (the bytes of ``path``); None threads: onnxruntime's default."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise IntegrityError(f"Could not load {path}: {e}. The file is corrupt; rebuild or restore it.") from e


def check_io_names(model_path: Path, input_names: Sequence[str], output_names: Sequence[str]) -> None:
    """The graph takes ``input_ids`` (and only inputs the encoder feeds) and outputs token vectors."""
    unknown = [name for name in input_names if name not in KNOWN_INPUTS]
    if INPUT_IDS not in input_names or TOKEN_OUTPUT not in output_names or unknown:
        raise IntegrityError(
            f"{model_path} has inputs {list(input_names)} and outputs {list(output_names)}; a student needs "
            f"input '{INPUT_IDS}' (optionally {list(KNOWN_INPUTS[1:])}, nothing else) and output '{TOKEN_OUTPUT}' "
            f"(optionally '{SENTENCE_OUTPUT}'). Rebuild the student."
        )


def check_outputs(
    manifest: StudentManifest,
    model_dir: Path,
    session: "onnxruntime.InferenceSession",
    feeds: Dict[str, np.ndarray],
    mask: np.ndarray,
    pool: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> bool:
    """Run the graph on a test batch; check its ``dim`` and its sentence output's pooling against ``manifest``.

    Args:
        feeds: the test batch's graph inputs.
        mask: its attention mask (batch, seq).
        pool: the manifest's pooling.

    Returns:
        Whether the graph has a sentence output (it is then the manifest's pooling).
    """
    model_path, manifest_path = model_dir / MODEL_FILE, model_dir / MANIFEST_FILE
    has_sentence = any(o.name == SENTENCE_OUTPUT for o in session.get_outputs())
    outputs = [TOKEN_OUTPUT] + ([SENTENCE_OUTPUT] if has_sentence else [])
    try:
        results = session.run(outputs, feeds)
    except Exception as e:
        raise IntegrityError(f"{model_path} fails on a two-text test batch: {e}. Rebuild or restore it.") from e
    tokens = results[0]
    graph_dim = int(tokens.shape[-1])
    if graph_dim != manifest.dim:
        raise IntegrityError(
            f"{manifest_path} says dim={manifest.dim}, but {model_path} outputs {graph_dim}-dim vectors. "
            "The manifest does not belong to this graph; restore it or rebuild the student."
        )
    if not has_sentence:
        return False
    pooled = pool(tokens, mask)
    if results[1].shape != pooled.shape or not np.allclose(results[1], pooled, rtol=1e-3, atol=1e-4):
        raise IntegrityError(
            f"{model_path}'s '{SENTENCE_OUTPUT}' is not the '{manifest.pooling}' pooling that "
            f"{manifest_path} names. Restore the manifest or rebuild the student."
        )
    return True


def check_tables(
    manifest: StudentManifest, model_dir: Path, model_bytes: bytes, vocab: int, max_seq_length: int
) -> int:
    """Check sequence length and vocabulary against the graph's embedding tables.

    Args:
        vocab: the tokenizer's vocabulary size.
        max_seq_length: the length the encoder will truncate to.

    Returns:
        The longest sequence the graph embeds: its position table's rows, or ``MAX_SEQ_LENGTH_LIMIT``.
    """
    model_path, manifest_path = model_dir / MODEL_FILE, model_dir / MANIFEST_FILE
    try:
        shapes = initializer_shapes(model_bytes)
    except (ValueError, IndexError) as e:  # onnxruntime read it, so this is unexpected; fall back to defaults
        logger.debug(f"Could not list the initializers of {model_path}: {e!r}")
        shapes = {}
    positions = embedding_rows(shapes, "position_embeddings", manifest.dim)
    limit = positions or MAX_SEQ_LENGTH_LIMIT
    where = f"the graph's position table ({positions} rows)" if positions else f"the limit of {limit} tokens"
    if manifest.max_seq_length > limit:
        raise IntegrityError(
            f"{manifest_path} says max_seq_length={manifest.max_seq_length}, beyond {where} of {model_path}. "
            "Restore the manifest or rebuild the student."
        )
    if max_seq_length > limit:
        raise StudentError(f"max_seq_length={max_seq_length} exceeds {where}; use at most {limit}.")
    words = embedding_rows(shapes, "word_embeddings", manifest.dim)
    if words is not None and vocab > words:
        raise IntegrityError(
            f"{model_dir / TOKENIZER_FILE} has {vocab} tokens, but {model_path} embeds only {words}. "
            "The tokenizer does not belong to this graph; restore it or rebuild the student."
        )
    return limit


# --- A minimal reader of ONNX protobuf: initializer names and shapes, without the onnx package. ---


def _varint(buf: memoryview, i: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, i
        shift += 7


def _fields(buf: memoryview, start: int, end: int) -> Iterator[Tuple[int, int, object]]:
    """(field number, wire type, value) of one protobuf message; length-delimited values as (start, end)."""
    i = start
    while i < end:
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = None, i + 8
        elif wire == 5:
            value, i = None, i + 4
        elif wire == 2:
            length, i = _varint(buf, i)
            value, i = (i, i + length), i + length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def initializer_shapes(model_bytes: bytes) -> Dict[str, Tuple[int, ...]]:
    """Name -> shape of every initializer of an ONNX model (ModelProto.graph.initializer)."""
    buf = memoryview(model_bytes)
    shapes: Dict[str, Tuple[int, ...]] = {}
    for number, wire, value in _fields(buf, 0, len(buf)):
        if number != 7 or wire != 2:  # ModelProto.graph
            continue
        for g_number, g_wire, g_value in _fields(buf, *value):
            if g_number != 5 or g_wire != 2:  # GraphProto.initializer (TensorProto)
                continue
            name, dims = "", []
            for t_number, t_wire, t_value in _fields(buf, *g_value):
                if t_number == 1 and t_wire == 0:  # dims, unpacked
                    dims.append(t_value)
                elif t_number == 1 and t_wire == 2:  # dims, packed
                    j, stop = t_value
                    while j < stop:
                        dim, j = _varint(buf, j)
                        dims.append(dim)
                elif t_number == 8 and t_wire == 2:  # name
                    name = bytes(buf[t_value[0] : t_value[1]]).decode("utf-8", "replace")
            shapes[name] = tuple(dims)
    return shapes


def embedding_rows(shapes: Dict[str, Tuple[int, ...]], kind: str, dim: int) -> Optional[int]:
    """Rows of the (rows, dim) initializer whose name contains ``kind`` (e.g. "position_embeddings")."""
    rows = [s[0] for name, s in shapes.items() if kind in name and len(s) == 2 and s[1] == dim]
    return min(rows) if rows else None
