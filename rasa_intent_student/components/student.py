"""What both Rasa components need from a student directory: resolve, validate, hash, copy, load."""
import hashlib
import shutil
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from rasa.shared.exceptions import InvalidConfigException

from rasa_intent_student.constants import (
    CONFIG_BATCH_SIZE,
    CONFIG_MAX_SEQ_LENGTH,
    CONFIG_MODEL,
    CONFIG_THREADS,
    DEFAULT_MODEL_DIR,
    MAX_SEQ_LENGTH_LIMIT,
)
from rasa_intent_student.encoder import StudentEncoder, check_model_dir
from rasa_intent_student.manifest import student_files

# (path, size, mtime_ns) of every file -> digest; Rasa fingerprints each node separately.
_DIGESTS: Dict[Tuple[Any, ...], str] = {}


def resolve_model_dir(model: Optional[str]) -> Path:
    """The configured student directory: ``model``, or the embedded default when None."""
    return Path(model).expanduser() if model else DEFAULT_MODEL_DIR


def validate_student_keys(component: str, config: Dict[str, Any]) -> None:
    """Check the types and ranges of ``model``, ``batch_size``, ``max_seq_length``, ``threads``.

    The existence of ``model`` is checked when a component is created, not here:
    a trained model must load on a machine where that path does not exist.
    """
    model = config.get(CONFIG_MODEL)
    if model is not None and not isinstance(model, (str, Path)):
        raise InvalidConfigException(
            f"{component}: {CONFIG_MODEL}={model!r} is not a path. Set it to a student directory "
            "(holding model.onnx, tokenizer.json, student.json) or leave it out for the embedded default."
        )
    _check_int(component, config, CONFIG_BATCH_SIZE, 1, None, "a positive integer such as 32")
    _check_int(component, config, CONFIG_THREADS, 1, None, "a positive integer, or null for onnxruntime's default")
    _check_int(
        component, config, CONFIG_MAX_SEQ_LENGTH, 3, MAX_SEQ_LENGTH_LIMIT,
        f"an integer in [3, {MAX_SEQ_LENGTH_LIMIT}], or null for the student's own limit",
    )


def _check_int(component: str, config: Dict[str, Any], key: str, low: int, high: Optional[int], hint: str) -> None:
    if key not in config:
        return
    value = config[key]
    if value is None and key != CONFIG_BATCH_SIZE:
        return
    # bool is an int subclass; `batch_size: true` is a typo, not 1.
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)
    if not ok:
        raise InvalidConfigException(f"{component}: {key}={value!r} is invalid; use {hint}.")


def check_student_dir(component: str, model: Optional[str]) -> Path:
    """The resolved student directory, or an InvalidConfigException that says how to fix it."""
    directory = resolve_model_dir(model)
    try:
        return check_model_dir(directory)
    except FileNotFoundError as e:
        where = f"{CONFIG_MODEL}={model!r}" if model else "the embedded default student"
        raise InvalidConfigException(
            f"{component}: {where} is not usable: {e} Set `{CONFIG_MODEL}` to a student directory, "
            "or reinstall rasa-intent-student to restore the embedded default."
        ) from e


def load_encoder(component: str, directory: Path, config: Dict[str, Any]) -> StudentEncoder:
    """Load a StudentEncoder with the component's ``threads`` and ``max_seq_length``."""
    try:
        encoder = StudentEncoder.load(
            directory, threads=config.get(CONFIG_THREADS), max_seq_length=config.get(CONFIG_MAX_SEQ_LENGTH)
        )
    except (FileNotFoundError, ValueError) as e:
        raise InvalidConfigException(f"{component}: could not load the student in {directory}: {e}") from e
    limit = encoder.manifest.max_seq_length
    if encoder.max_seq_length > limit:
        raise InvalidConfigException(
            f"{component}: {CONFIG_MAX_SEQ_LENGTH}={encoder.max_seq_length} exceeds the student's limit of {limit} "
            f"tokens ({directory}); use a value in [3, {limit}] or null."
        )
    return encoder


def student_fingerprint(directory: Path) -> str:
    """SHA-256 over the student files, so that a changed student retrains the graph nodes using it."""
    paths = student_files(directory)
    try:
        key = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    except FileNotFoundError:
        return f"missing-student:{directory}"
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        for path in paths:
            digest.update(path.name.encode())
            with path.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def copy_student(source: Path, target: Path) -> None:
    """Copy the student files into ``target`` (a model storage resource directory)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in student_files(source):
        if (target / path.name).resolve() != path.resolve():  # fine-tuning reloads from the resource itself
            shutil.copyfile(path, target / path.name)
