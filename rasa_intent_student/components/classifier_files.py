"""RouteClassifier's files: weights and bias (.npz); labels, temperature and SHA-256 digests (.json). No pickle."""
import json
import logging
from pathlib import Path
from typing import List

import numpy as np
from rasa.shared.exceptions import RasaException

from rasa_intent_student.calibration import LinearModel
from rasa_intent_student.constants import CLASSIFIER_META_FILE, CLASSIFIER_WEIGHTS_FILE
from rasa_intent_student.manifest import array_sha256, json_sha256

logger = logging.getLogger(__name__)

COMPONENT = "RouteClassifier"


def _meta_digest(labels: List[str], temperature: float, dim: int) -> str:
    return json_sha256({"labels": labels, "temperature": temperature, "dim": dim})


def write_model(model: LinearModel, directory: Path) -> None:
    """Weights and bias as .npz; labels, temperature and the SHA-256 of everything as .json."""
    weights = np.asarray(model.weights, dtype=np.float32)
    bias = np.asarray(model.bias, dtype=np.float32)
    labels, temperature, dim = list(model.labels), float(model.temperature), int(weights.shape[1])
    np.savez(directory / CLASSIFIER_WEIGHTS_FILE, weights=weights, bias=bias)
    meta = {
        "labels": labels,
        "temperature": temperature,
        "dim": dim,
        # Verified on load: a damaged array or a reordered label list refuses to load.
        "sha256": {
            "weights": array_sha256(weights),
            "bias": array_sha256(bias),
            "meta": _meta_digest(labels, temperature, dim),
        },
    }
    (directory / CLASSIFIER_META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), "utf-8")


def read_model(directory: Path) -> LinearModel:
    """Inverse of ``write_model``; damaged or inconsistent files raise RasaException naming the file.

    Checks, in order: both files parse; the labels are distinct strings and the temperature is a
    finite number > 0; the arrays' shapes match the labels and ``dim``; the arrays are finite;
    the SHA-256 digests recorded at training match (files written before digests existed load
    with a warning).
    """
    meta_path, arrays_path = directory / CLASSIFIER_META_FILE, directory / CLASSIFIER_WEIGHTS_FILE
    name = COMPONENT

    def damaged(path: Path, problem: str) -> RasaException:
        return RasaException(f"{name}: damaged model file {path}: {problem}. Retrain the model.")

    try:
        meta = json.loads(meta_path.read_text("utf-8"))
        labels, temperature = list(meta["labels"]), float(meta["temperature"])
        dim = int(meta.get("dim", -1))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RasaException(f"{name}: damaged model files in {directory}: {meta_path.name}: {e!r}. Retrain the model.") from e
    try:
        with np.load(arrays_path, allow_pickle=False) as arrays:
            weights, bias = arrays["weights"], arrays["bias"]
    except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
        raise RasaException(f"{name}: damaged model files in {directory}: {arrays_path.name}: {e!r}. Retrain the model.") from e

    if not labels or not all(isinstance(label, str) for label in labels) or len(set(labels)) != len(labels):
        raise damaged(meta_path, f"labels {labels!r} are not distinct intent names")
    if not np.isfinite(temperature) or temperature <= 0:
        raise damaged(meta_path, f"temperature={temperature!r}; it must be a finite number > 0")
    if dim < 0:
        dim = int(weights.shape[-1]) if weights.ndim == 2 else -1
    if weights.shape != (len(labels), dim) or bias.shape != (len(labels),):
        raise damaged(
            arrays_path,
            f"weights {weights.shape} and bias {bias.shape} do not fit {len(labels)} labels of dim {dim} "
            f"(from {meta_path.name})",
        )
    for key, array in (("weights", weights), ("bias", bias)):
        if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
            raise damaged(arrays_path, f"'{key}' holds non-finite values (NaN or inf) or is not a float array")

    recorded = meta.get("sha256")
    if recorded is None:
        logger.warning(f"{meta_path} records no checksums (written by an older release); retrain to add them.")
    else:
        actual = {"weights": array_sha256(weights), "bias": array_sha256(bias), "meta": _meta_digest(labels, temperature, dim)}
        for key in ("weights", "bias", "meta"):
            if not isinstance(recorded, dict) or recorded.get(key) != actual[key]:
                path, what = (meta_path, "labels, temperature or dim") if key == "meta" else (arrays_path, f"'{key}'")
                raise damaged(path, f"the {what} do not match the SHA-256 recorded at training in {meta_path.name}")
    return LinearModel(weights.astype(np.float32), bias.astype(np.float32), labels, temperature)
