"""StudentEncoder: tokenizer + ONNX session + pooling, behind one ``encode`` method."""
import logging
from pathlib import Path
from typing import Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np

from rasa_intent_student.constants import (
    ATTENTION_MASK,
    CHARS_PER_TOKEN_CAP,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MODEL_DIR,
    INPUT_IDS,
    MODEL_FILE,
    STUDENT_FILES,
    TOKEN_OUTPUT,
    TOKEN_TYPE_IDS,
    TOKENIZER_FILE,
)
from rasa_intent_student.manifest import StudentManifest
from rasa_intent_student.pooling import POOLERS, normalize

logger = logging.getLogger(__name__)

T = TypeVar("T")
PathLike = Union[str, Path]


class TokenEmbeddings(NamedTuple):
    """Token vectors of one text, without special and prefix tokens.

    Attributes:
        vectors: float32 array of shape (t, dim).
        offsets: t (start, end) character spans into the original text.
        sentence: float32 array of shape (dim,), the text's sentence embedding.
    """

    vectors: np.ndarray
    offsets: List[Tuple[int, int]]
    sentence: np.ndarray


def iter_batch(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def check_model_dir(path: PathLike) -> Path:
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


def as_text_list(texts: Union[str, Iterable[str]]) -> List[str]:
    """Accept one string or an iterable of strings; reject anything else by position."""
    if isinstance(texts, str):
        return [texts]
    if texts is None:
        raise TypeError("texts is None; pass a string or a list of strings.")
    items = list(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, not str; every text must be a string.")
    return items


class StudentEncoder:
    """A multilingual sentence encoder that runs with onnxruntime, tokenizers and numpy.

    Example:
        >>> encoder = StudentEncoder.load()          # the embedded default student
        >>> encoder.encode(["book a table", "¿qué pedí ayer?"]).shape
        (2, 384)
    """

    def __init__(
        self,
        model_dir: PathLike,
        threads: Optional[int] = None,
        max_seq_length: Optional[int] = None,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.model_dir = check_model_dir(model_dir)
        self.manifest = StudentManifest.load(self.model_dir)
        self.max_seq_length = int(max_seq_length or self.manifest.max_seq_length)
        if self.max_seq_length < 3:
            raise ValueError(f"max_seq_length={self.max_seq_length} is too small; use at least 3 (two are special tokens).")
        if threads is not None and int(threads) < 1:
            raise ValueError(f"threads={threads} is invalid; use a positive integer, or None for onnxruntime's default.")

        tokenizer_path = self.model_dir / TOKENIZER_FILE
        try:
            self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as e:  # tokenizers raises a bare Exception on bad JSON
            raise ValueError(f"Could not read {tokenizer_path}: {e}. The file is corrupt; rebuild or restore it.") from e
        # Truncation and padding are set once here, not per call.
        self.tokenizer.enable_truncation(max_length=self.max_seq_length)
        pad_token = self.tokenizer.id_to_token(self.pad_id)
        self.tokenizer.enable_padding(pad_id=self.pad_id, pad_token=pad_token or "<pad>")

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        model_path = self.model_dir / MODEL_FILE
        try:
            self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise ValueError(f"Could not load {model_path}: {e}. The file is corrupt; rebuild or restore it.") from e
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        if INPUT_IDS not in self.input_names or TOKEN_OUTPUT not in self.output_names:
            raise ValueError(
                f"{model_path} has inputs {self.input_names} and outputs {self.output_names}; a student needs "
                f"input '{INPUT_IDS}' and output '{TOKEN_OUTPUT}'."
            )
        self._pool = POOLERS[self.manifest.pooling]

    @classmethod
    def load(
        cls,
        path: Optional[PathLike] = None,
        threads: Optional[int] = None,
        max_seq_length: Optional[int] = None,
    ) -> "StudentEncoder":
        """Load a student directory, or the embedded default when ``path`` is None."""
        return cls(path or DEFAULT_MODEL_DIR, threads=threads, max_seq_length=max_seq_length)

    @property
    def dim(self) -> int:
        return self.manifest.dim

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.token_to_id("<pad>")
        if pad is None:
            pad = self.tokenizer.token_to_id("[PAD]")
        return int(pad or 0)

    def _prepare(self, texts: Sequence[str]) -> List[str]:
        cap = self.max_seq_length * CHARS_PER_TOKEN_CAP
        return [self.manifest.prefix + text[:cap] for text in texts]

    def _run(self, texts: Sequence[str], outputs: List[str]):
        encodings = self.tokenizer.encode_batch(self._prepare(texts))
        # int64: the exported graph declares int64 inputs.
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {INPUT_IDS: ids}
        if ATTENTION_MASK in self.input_names:
            feeds[ATTENTION_MASK] = mask
        if TOKEN_TYPE_IDS in self.input_names:
            feeds[TOKEN_TYPE_IDS] = np.zeros_like(ids)
        return encodings, mask, self.session.run(outputs, feeds)

    def _sentence(self, token_embeddings: np.ndarray, mask: np.ndarray) -> np.ndarray:
        pooled = self._pool(token_embeddings, mask)  # (batch, dim)
        return normalize(pooled) if self.manifest.normalize else pooled

    def encode(self, texts: Union[str, Iterable[str]], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Encode texts into sentence embeddings.

        Args:
            texts: one string or a list of strings (empty strings are fine).
            batch_size: texts per ONNX run.

        Returns:
            float32 array of shape (n, dim), L2-normalized when the manifest says so.
        """
        items = as_text_list(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} is invalid; use a positive integer.")
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        # Sort by length so each batch pads little; results go back in input order.
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        for batch_idx in iter_batch(order, batch_size):
            _, mask, (tokens,) = self._run([items[i] for i in batch_idx], [TOKEN_OUTPUT])
            out[list(batch_idx)] = self._sentence(tokens, mask)
        return out

    def encode_tokens(
        self, texts: Union[str, Iterable[str]], batch_size: int = DEFAULT_BATCH_SIZE
    ) -> List[TokenEmbeddings]:
        """Encode texts into token vectors with character offsets into each original text.

        Special tokens and the tokens of the prefix are dropped; a text with no
        content tokens (empty or whitespace) gets a (0, dim) ``vectors`` array.
        """
        items = as_text_list(texts)
        results: List[TokenEmbeddings] = []
        shift = len(self.manifest.prefix)
        for batch in iter_batch(items, batch_size):
            encodings, mask, (tokens,) = self._run(batch, [TOKEN_OUTPUT])
            sentences = self._sentence(tokens, mask)
            for row, (text, encoding) in enumerate(zip(batch, encodings)):
                keep, offsets = [], []
                for j, ((start, end), special) in enumerate(zip(encoding.offsets, encoding.special_tokens_mask)):
                    if special or not mask[row, j] or end <= shift:
                        continue
                    start, end = max(start - shift, 0), end - shift
                    # Metaspace pieces ("▁a") cover the space before the word; start at the word.
                    while start < end - 1 and text[start].isspace():
                        start += 1
                    keep.append(j)
                    offsets.append((start, end))
                vectors = tokens[row, keep].astype(np.float32) if keep else np.zeros((0, self.dim), np.float32)
                results.append(TokenEmbeddings(vectors, offsets, sentences[row]))
        return results

    def __repr__(self) -> str:
        m = self.manifest
        return (
            f"StudentEncoder(dir={str(self.model_dir)!r}, dim={m.dim}, layers={list(m.layers_kept)}, "
            f"vocab={m.vocab_size}, quantization={m.quantization!r})"
        )
