"""StudentEncoder: tokenizer + ONNX session + pooling, behind one ``encode`` method.

Loading checks the student before it serves anything (see ``rasa_intent_student.integrity``).
"""
import logging
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from rasa_intent_student.batching import as_text_list, check_batch_size, check_threads, iter_batch, progress
from rasa_intent_student.constants import (
    ATTENTION_MASK,
    CHARS_PER_TOKEN_CAP,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MODEL_DIR,
    INPUT_IDS,
    LANGUAGE_OFFSETS_FILE,
    MODEL_FILE,
    SENTENCE_OUTPUT,
    TOKEN_OUTPUT,
    TOKEN_TYPE_IDS,
    TOKENIZER_FILE,
)
from rasa_intent_student.errors import StudentError
from rasa_intent_student.integrity import (
    check_io_names,
    check_model_dir,
    check_outputs,
    check_tables,
    open_session,
    read_tokenizer,
    repair_text,
    verify_checksums,
)
from rasa_intent_student.language_offsets import LanguageOffsets
from rasa_intent_student.manifest import StudentManifest
from rasa_intent_student.pooling import POOLERS, centre as centre_vectors, normalize
from rasa_intent_student.tokens import TokenEmbeddings, content_tokens

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]


class StudentEncoder:
    """A multilingual sentence encoder that runs with onnxruntime, tokenizers and numpy.

    ``encode`` follows sentence-transformers: one string gives a vector of shape (dim,),
    a list gives (n, dim); ``normalize_embeddings``, ``prompt`` and ``show_progress_bar``
    mean what they mean there. A student with language offsets (``language_offsets.py``)
    removes each text's language offset by default (``language_neutral``), which brings a
    sentence and its translation together; ``language_neutral=False`` gives the raw embedding.

    Example:
        >>> encoder = StudentEncoder.load()          # the embedded default student
        >>> encoder.encode(["book a table", "¿qué pedí ayer?"]).shape
        (2, 384)
        >>> encoder.encode("book a table").shape
        (384,)
        >>> a, b = encoder.encode(["I ordered pizza", "the weather is nice"])
        >>> encoder.similarity(a, b, centre=True)    # centred cosine: about 0 for unrelated texts
    """

    def __init__(
        self,
        model_dir: PathLike,
        threads: Optional[int] = None,
        max_seq_length: Optional[int] = None,
    ) -> None:
        check_threads(threads, "onnxruntime's default")
        self.model_dir = check_model_dir(model_dir)
        self.manifest = StudentManifest.load(self.model_dir)
        self.max_seq_length = int(max_seq_length or self.manifest.max_seq_length)
        if self.max_seq_length < 3:
            raise StudentError(f"max_seq_length={self.max_seq_length} is too small; use at least 3 (two are special tokens).")

        # Each file is read once: the bytes that are checksummed are the bytes that are loaded.
        model_path, tokenizer_path = self.model_dir / MODEL_FILE, self.model_dir / TOKENIZER_FILE
        model_bytes, tokenizer_bytes = model_path.read_bytes(), tokenizer_path.read_bytes()
        files = {model_path: model_bytes, tokenizer_path: tokenizer_bytes}
        offsets_path = self.model_dir / LANGUAGE_OFFSETS_FILE
        if self.manifest.language_offsets:
            if not offsets_path.is_file():
                raise FileNotFoundError(
                    f"{offsets_path} not found, but student.json names language offsets for {list(self.manifest.language_offsets)}. "
                    f"Restore the file, or refit it with `rasa-intent-student language-offsets {self.model_dir}`."
                )
            files[offsets_path] = offsets_path.read_bytes()
        verify_checksums(self.manifest, self.model_dir, files)

        self.tokenizer = read_tokenizer(tokenizer_bytes, tokenizer_path)
        # Truncation and padding are set once here, not per call.
        self.tokenizer.enable_truncation(max_length=self.max_seq_length)
        pad_token = self.tokenizer.id_to_token(self.pad_id)
        self.tokenizer.enable_padding(pad_id=self.pad_id, pad_token=pad_token or "<pad>")

        self.session = open_session(model_bytes, model_path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._pool = POOLERS[self.manifest.pooling]
        self._feed_mask = ATTENTION_MASK in self.input_names
        self._feed_types = TOKEN_TYPE_IDS in self.input_names
        self._reference_mean: Optional[np.ndarray] = None
        self._check_graph(model_bytes)
        self.language_offsets: Optional[LanguageOffsets] = None  # read once the graph's dim is checked
        if self.manifest.language_offsets:
            self.language_offsets = LanguageOffsets.read(files[offsets_path], offsets_path, self.manifest.language_offsets,
                                                         self.manifest.dim)

    def _check_graph(self, model_bytes: bytes) -> None:
        """Check student.json and tokenizer.json against the graph; decide whether to use its pooled output."""
        model_path = self.model_dir / MODEL_FILE
        check_io_names(model_path, self.input_names, self.output_names)
        # One run of two texts of different lengths: the graph's true output size, and whether
        # its sentence output is the manifest's pooling of its token output (padding included).
        prefix = self.manifest.prefix
        encodings = self._tokenize([prefix + "a", prefix + "a longer text to check padding and pooling"])
        feeds, mask = self._feeds(encodings)
        self._use_sentence_output = check_outputs(self.manifest, self.model_dir, self.session, feeds, mask, self._pool)
        vocab = self.tokenizer.get_vocab_size()
        self.position_limit = check_tables(self.manifest, self.model_dir, model_bytes, vocab, self.max_seq_length)

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

    def _tokenize(self, texts: List[str]):
        """Tokenizer encodings of already prefixed texts; lone surrogates are repaired, not fatal."""
        try:
            if len(texts) == 1:
                return [self.tokenizer.encode(texts[0])]  # no thread pool for one text
            return self.tokenizer.encode_batch(texts)
        except TypeError:  # tokenizers refuses str with lone surrogates
            repaired = [repair_text(t) for t in texts]
            if repaired == texts:
                raise
            return self._tokenize(repaired)

    def _feeds(self, encodings) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
        # int64: the exported graph declares int64 inputs.
        if len(encodings) == 1:
            ids = np.array([encodings[0].ids], dtype=np.int64)
            mask = np.array([encodings[0].attention_mask], dtype=np.int64)
        else:
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {INPUT_IDS: ids}
        if self._feed_mask:
            feeds[ATTENTION_MASK] = mask
        if self._feed_types:
            feeds[TOKEN_TYPE_IDS] = np.zeros_like(ids)
        return feeds, mask

    def _prepare(self, texts: Sequence[str], prefix: str) -> List[str]:
        cap = self.max_seq_length * CHARS_PER_TOKEN_CAP
        return [prefix + text[:cap] for text in texts]

    def _run(self, texts: Sequence[str], outputs: List[str], prefix: Optional[str] = None):
        prefix = self.manifest.prefix if prefix is None else prefix
        encodings = self._tokenize(self._prepare(texts, prefix))
        feeds, mask = self._feeds(encodings)
        return encodings, mask, self.session.run(outputs, feeds)

    def _pooled(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        """Sentence embeddings (n, dim), not normalized: the graph's pooled output when it has one."""
        if self._use_sentence_output:
            _, _, (sentences,) = self._run(texts, [SENTENCE_OUTPUT], prefix)
            return sentences
        _, mask, (tokens,) = self._run(texts, [TOKEN_OUTPUT], prefix)
        return self._pool(tokens, mask)

    def encode(
        self,
        sentences: Union[str, Iterable[str]],
        batch_size: int = DEFAULT_BATCH_SIZE,
        show_progress_bar: Optional[bool] = None,
        normalize_embeddings: Optional[bool] = None,
        prompt: Optional[str] = None,
        language_neutral: Optional[bool] = None,
    ) -> np.ndarray:
        """Encode texts into sentence embeddings, as ``SentenceTransformer.encode`` does.

        Args:
            sentences: one string, or a list of strings (empty strings are fine; lone
                surrogates are replaced by U+FFFD).
            batch_size: texts per ONNX run.
            show_progress_bar: a tqdm bar over batches (needs tqdm); None or False: none.
            normalize_embeddings: L2-normalize; None: as the manifest says (the default
                student: True).
            prompt: text put before each input; None: the manifest's prefix (``"query: "``
                for e5 students). ``"passage: "`` encodes documents for retrieval; ``""`` none.
            language_neutral: remove each text's language offset; None: when the student has
                offsets (the default student does). False: the raw embedding (e.g. to compare with a teacher).

        Returns:
            float32 array of shape (dim,) for one string, (n, dim) for a list.
        """
        single = isinstance(sentences, str)
        items = [sentences] if single else as_text_list(sentences)
        check_batch_size(batch_size)
        if prompt is not None and not isinstance(prompt, str):
            raise TypeError(f"prompt is {type(prompt).__name__}, not str.")
        prefix = self.manifest.prefix if prompt is None else prompt
        if len(items) <= batch_size and not show_progress_bar:
            out = self._pooled(items, prefix) if items else np.zeros((0, self.dim), np.float32)
        else:
            out = np.empty((len(items), self.dim), dtype=np.float32)
            # Sort by length so each batch pads little; results go back in input order.
            order = sorted(range(len(items)), key=lambda i: len(items[i]))
            batches = list(iter_batch(order, batch_size))
            for batch_idx in progress(batches, show_progress_bar):
                out[list(batch_idx)] = self._pooled([items[i] for i in batch_idx], prefix)
        unit = self.manifest.normalize if normalize_embeddings is None else normalize_embeddings
        out = self._finish(out, unit, language_neutral)
        return out[0] if single else out

    def _finish(self, pooled: np.ndarray, unit: bool, language_neutral: Optional[bool]) -> np.ndarray:
        """Pooled sentence vectors (this call's own array) without their language offsets when asked, unit rows
        when ``unit``: one pass either way."""
        if self.wants_language_neutral(language_neutral):
            return self.language_offsets.remove(pooled, keep_length=not unit)
        return normalize(pooled, copy=False) if unit else pooled

    def wants_language_neutral(self, language_neutral: Optional[bool]) -> bool:
        """Whether to remove language offsets (None: when the student has them); True without offsets raises."""
        if language_neutral is None:
            return self.language_offsets is not None
        if language_neutral and self.language_offsets is None:
            raise StudentError(f"language_neutral=True, but {self.model_dir} has no language offsets. Fit them with "
                               f"`rasa-intent-student language-offsets {self.model_dir}`, or pass language_neutral=None.")
        return bool(language_neutral)

    def encode_tokens(
        self,
        texts: Union[str, Iterable[str]],
        batch_size: int = DEFAULT_BATCH_SIZE,
        prompt: Optional[str] = None,
        language_neutral: Optional[bool] = None,
    ) -> List[TokenEmbeddings]:
        """Encode texts into token vectors with character offsets into each original text.

        Special tokens and the tokens of the prefix (``prompt``, default the manifest's)
        are dropped; a text with no content tokens (empty or whitespace) gets a (0, dim)
        ``vectors`` array. ``sentence`` is what ``encode`` gives (normalized as the manifest
        says, language-neutral as ``language_neutral`` says); token vectors are raw.
        """
        items = as_text_list(texts)
        check_batch_size(batch_size)
        prefix = self.manifest.prefix if prompt is None else prompt
        results: List[TokenEmbeddings] = []
        for batch in iter_batch(items, batch_size):
            encodings, mask, (tokens,) = self._run(batch, [TOKEN_OUTPUT], prefix)
            sentences = self._finish(self._pool(tokens, mask), self.manifest.normalize, language_neutral)
            for row, (text, encoding) in enumerate(zip(batch, encodings)):
                keep, offsets = content_tokens(encoding, mask[row], text, len(prefix))
                vectors = tokens[row, keep].astype(np.float32) if keep else np.zeros((0, self.dim), np.float32)
                results.append(TokenEmbeddings(vectors, offsets, sentences[row]))
        return results

    def reference_mean(self) -> np.ndarray:
        """The mean embedding of a fixed multilingual reference set, for centring.

        The reference set: ``routes.reference_texts()``, 32 evenly spaced texts of each
        language of the package's route training split (``data/routes/train``), encoded
        with the manifest's prefix and normalization. Computed once per encoder (about
        0.3 s). Returns float32 of shape (dim,).
        """
        if self._reference_mean is None:
            from rasa_intent_student.routes import reference_texts

            texts = reference_texts()
            if not texts:
                raise StudentError("No route training texts found; pass centre=<mean vector> instead of True.")
            self._reference_mean = self.encode(texts).mean(axis=0).astype(np.float32)
        return self._reference_mean

    def similarity(
        self, a: np.ndarray, b: np.ndarray, centre: Union[bool, np.ndarray] = False
    ) -> np.ndarray:
        """Cosine similarities between embeddings, as ``SentenceTransformer.similarity``.

        Student vectors share a large common component: raw cosines of unrelated
        sentences sit around 0.84, which compresses every threshold into a narrow band.
        Centring subtracts a mean vector first, so that an average unrelated pair scores
        about 0 and related pairs clearly above it.

        Args:
            a: (dim,) or (n, dim) embeddings from ``encode``.
            b: (dim,) or (m, dim) embeddings from ``encode``.
            centre: False: plain cosine. True: subtract ``reference_mean()`` (the mean of a
                fixed multilingual sample of the route training texts). An array of shape
                (dim,): subtract that mean instead (e.g. the mean of your own corpus).

        Returns:
            float32 array of shape (n, m); 1-D inputs count as one row.
        """
        a, b = np.atleast_2d(np.asarray(a, np.float32)), np.atleast_2d(np.asarray(b, np.float32))
        if isinstance(centre, (bool, np.bool_)) or centre is None:
            mean = self.reference_mean() if centre else None
        else:
            mean = np.asarray(centre, np.float32)
        if mean is None:
            return normalize(a) @ normalize(b).T
        return centre_vectors(a, mean) @ centre_vectors(b, mean).T

    def __repr__(self) -> str:
        m = self.manifest
        return (
            f"StudentEncoder(dir={str(self.model_dir)!r}, dim={m.dim}, layers={list(m.layers_kept)}, "
            f"vocab={m.vocab_size}, quantization={m.quantization!r})"
        )

