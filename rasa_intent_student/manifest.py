"""The machine-readable description of a student: ``student.json``."""
import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from rasa_intent_student.constants import (
    DEFAULT_MAX_SEQ_LENGTH,
    DEFAULT_PREFIX,
    LANGUAGE_OFFSETS_FILE,
    LANGUAGES,
    MANIFEST_FILE,
    MODEL_FILE,
    POOLING_MODES,
    STUDENT_FILES,
    STUDENT_OPTIONAL_FILES,
    QUANTIZATION_MODES,
    TOKENIZER_FILE,
)
from rasa_intent_student.errors import IntegrityError, StudentError

# The student files whose SHA-256 a manifest records (the manifest cannot record its own).
CHECKSUMMED_FILES = (MODEL_FILE, TOKENIZER_FILE, LANGUAGE_OFFSETS_FILE)
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclasses.dataclass(frozen=True)
class StudentManifest:
    """What the runtime needs to know about a student model directory.

    Attributes:
        dim: size of the sentence embedding.
        max_seq_length: tokens per text, specials included, before truncation.
        pooling: one of ``POOLING_MODES``.
        normalize: whether sentence embeddings are L2-normalized.
        prefix: text put before every input (e5 expects ``"query: "``).
        teacher: the model the student was made from.
        layers_kept: teacher layer indices the student kept.
        vocab_size: rows of the student's embedding matrix.
        quantization: one of ``QUANTIZATION_MODES``.
        languages: ISO 639-1 codes the vocabulary was pruned for (empty: not pruned).
        versions: library versions used to build the student.
        metrics: verification figures written by the factory (cosines, sizes).
        language_offsets: the languages of ``language_offsets.npy``, in its row order (empty: the
            student has none, and ``encode`` returns its raw embeddings).
        checksums: file name -> SHA-256 hex digest of ``CHECKSUMMED_FILES``; verified when the
            student loads. Empty in manifests written before checksums existed (they load with a
            warning). ``seal_student`` fills it in.
    """

    dim: int
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH
    pooling: str = "mean"
    normalize: bool = True
    prefix: str = DEFAULT_PREFIX
    teacher: str = ""
    layers_kept: Tuple[int, ...] = ()
    vocab_size: int = 0
    quantization: str = "none"
    languages: Tuple[str, ...] = ()
    versions: Dict[str, str] = dataclasses.field(default_factory=dict)
    metrics: Dict[str, Any] = dataclasses.field(default_factory=dict)
    language_offsets: Tuple[str, ...] = ()
    checksums: Dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pooling not in POOLING_MODES:
            raise StudentError(f"Unknown pooling '{self.pooling}'. Valid options: {POOLING_MODES}.")
        if self.quantization not in QUANTIZATION_MODES:
            raise StudentError(
                f"Unknown quantization '{self.quantization}'. Valid options: {QUANTIZATION_MODES}."
            )
        for key in ("dim", "max_seq_length"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise StudentError(f"{key}={value!r} is not an integer.")
        if self.dim <= 0 or self.max_seq_length < 3:
            raise StudentError(
                f"Invalid student dims: dim={self.dim}, max_seq_length={self.max_seq_length} "
                "(need dim > 0 and max_seq_length >= 3)."
            )
        unknown = [lang for lang in self.language_offsets if lang not in LANGUAGES]
        if unknown or len(set(self.language_offsets)) != len(self.language_offsets) or len(self.language_offsets) == 1:
            raise StudentError(f"language_offsets={list(self.language_offsets)} must name two or more distinct languages "
                               f"of {list(LANGUAGES)} (or none).")
        if not isinstance(self.checksums, dict):
            raise StudentError(f"checksums={self.checksums!r} is not a mapping of file name to SHA-256.")
        for name, digest in self.checksums.items():
            if name not in CHECKSUMMED_FILES:
                raise StudentError(f"checksums names {name!r}; only {list(CHECKSUMMED_FILES)} are checksummed.")
            if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
                raise StudentError(f"checksums[{name!r}]={digest!r} is not a lowercase SHA-256 hex digest.")

    def to_dict(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        data["layers_kept"] = list(self.layers_kept)
        data["languages"] = list(self.languages)
        data["language_offsets"] = list(self.language_offsets)
        if not self.language_offsets:
            del data["language_offsets"]  # students without offsets stay readable by older releases
        if not self.checksums:
            del data["checksums"]  # manifests without checksums stay readable by older releases
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "StudentManifest":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise StudentError(f"Unknown keys {unknown} in {MANIFEST_FILE}. Valid keys: {sorted(known)}.")
        data = dict(data)
        for key in ("layers_kept", "languages", "language_offsets"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    def save(self, directory: Union[str, Path]) -> Path:
        path = Path(directory) / MANIFEST_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: Union[str, Path]) -> "StudentManifest":
        path = Path(directory) / MANIFEST_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{MANIFEST_FILE} not found in {Path(directory)}: not a student model directory.")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise IntegrityError(f"Corrupt {path}: {e}. Rebuild the student or restore the file.") from e
        if not isinstance(data, dict):
            raise IntegrityError(f"Corrupt {path}: expected a JSON object, got {type(data).__name__}.")
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as e:
            raise IntegrityError(f"Corrupt {path}: {e}") from e

    def replace(self, **changes: Any) -> "StudentManifest":
        return dataclasses.replace(self, **changes)

    def verify_file(self, path: Union[str, Path], digest: Optional[str] = None) -> bool:
        """Check ``path`` against the checksum recorded for its file name.

        Args:
            path: a student file.
            digest: its SHA-256 if the caller already has it (saves reading the file twice).

        Returns:
            True when a checksum was recorded and matches; False when none is recorded.

        Raises:
            IntegrityError: the file's SHA-256 differs from the recorded one.
        """
        path = Path(path)
        expected = self.checksums.get(path.name)
        if expected is None:
            return False
        actual = digest or file_sha256(path)
        if actual != expected:
            raise IntegrityError(
                f"{path} is damaged: its SHA-256 is {actual[:16]}…, but {MANIFEST_FILE} records {expected[:16]}…. "
                "Restore the file, or rebuild the student (or retrain the Rasa model that holds it)."
            )
        return True


def file_sha256(path: Union[str, Path]) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def student_files(directory: Union[str, Path]) -> List[Path]:
    """The files that make up the student in ``directory``: the required ones, then the optional ones it has."""
    directory = Path(directory)
    return [directory / name for name in STUDENT_FILES] + [
        directory / name for name in STUDENT_OPTIONAL_FILES if (directory / name).is_file()]


def student_checksums(directory: Union[str, Path]) -> Dict[str, str]:
    """SHA-256 of each of ``CHECKSUMMED_FILES`` in ``directory`` (the optional ones when present)."""
    return {path.name: file_sha256(path) for path in student_files(directory) if path.name in CHECKSUMMED_FILES}


def seal_student(directory: Union[str, Path]) -> StudentManifest:
    """Record the checksums of the student files in ``directory``'s manifest and save it.

    Call it last, after every student file is written (the factory after export, the
    StudentFeaturizer after copying the student into a trained model).
    """
    manifest = StudentManifest.load(directory).replace(checksums=student_checksums(directory))
    manifest.save(directory)
    return manifest


def library_versions(*names: str) -> Dict[str, str]:
    """Installed versions of the given distributions (missing ones are skipped)."""
    from importlib import metadata

    versions: Dict[str, str] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions



def array_sha256(array: Any) -> str:
    """SHA-256 hex digest of a numpy array's dtype, shape and C-order bytes."""
    import numpy as np

    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def json_sha256(value: Any) -> str:
    """SHA-256 hex digest of a JSON value in canonical form (sorted keys, no spaces)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
