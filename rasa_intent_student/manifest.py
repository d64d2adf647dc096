"""The machine-readable description of a student: ``student.json``."""
import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, Tuple, Union

from rasa_intent_student.constants import (
    DEFAULT_MAX_SEQ_LENGTH,
    DEFAULT_PREFIX,
    MANIFEST_FILE,
    POOLING_MODES,
    QUANTIZATION_MODES,
)


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

    def __post_init__(self) -> None:
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"Unknown pooling '{self.pooling}'. Valid options: {POOLING_MODES}.")
        if self.quantization not in QUANTIZATION_MODES:
            raise ValueError(
                f"Unknown quantization '{self.quantization}'. Valid options: {QUANTIZATION_MODES}."
            )
        if self.dim <= 0 or self.max_seq_length < 3:
            raise ValueError(
                f"Invalid student dims: dim={self.dim}, max_seq_length={self.max_seq_length} "
                "(need dim > 0 and max_seq_length >= 3)."
            )

    def to_dict(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        data["layers_kept"] = list(self.layers_kept)
        data["languages"] = list(self.languages)
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "StudentManifest":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown keys {unknown} in {MANIFEST_FILE}. Valid keys: {sorted(known)}.")
        data = dict(data)
        for key in ("layers_kept", "languages"):
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
            raise ValueError(f"Corrupt {path}: {e}. Rebuild the student or restore the file.") from e
        if not isinstance(data, dict):
            raise ValueError(f"Corrupt {path}: expected a JSON object, got {type(data).__name__}.")
        try:
            return cls.from_dict(data)
        except TypeError as e:
            raise ValueError(f"Corrupt {path}: {e}.") from e

    def replace(self, **changes: Any) -> "StudentManifest":
        return dataclasses.replace(self, **changes)


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

