"""``rasa-intent-student route``: route texts to action / recall / other with the shipped router.

The router is the one a bot gets from ``RouteClassifier`` trained on the shipped route examples
alone (StudentFeaturizer's ``add_route_examples: true``): class-balanced logistic regression
(``ROUTER_C``) on the student's sentence embeddings of the shipped route training split
(``data/routes/train``, every language), with a softmax temperature fitted on 5-fold
out-of-fold logits. Fitting takes a
few seconds, so the fitted router is cached, keyed by the SHA-256 of the student files, of
the route data and of the router settings: in ``$RASA_INTENT_STUDENT_CACHE``, else
``$XDG_CACHE_HOME/rasa-intent-student``, else ``~/.cache/rasa-intent-student``. A damaged
cache file is refitted, never used.
"""
import argparse
import hashlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Dict, List

from rasa_intent_student.constants import ROUTER_C, ROUTER_CALIBRATION_FOLDS, ROUTER_MAX_ITER, ROUTER_RANDOM_STATE
from rasa_intent_student.errors import StudentError, require_extra

logger = logging.getLogger(__name__)

CACHE_ENV = "RASA_INTENT_STUDENT_CACHE"
CACHE_VERSION = 1


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "route",
        help="print the route (action / recall / other) and its confidences for each text",
        description="Route texts with the shipped router: the student's embeddings + calibrated logistic regression "
        "fitted on the shipped route examples (fitted once per student, then cached).",
    )
    parser.add_argument("texts", nargs="+", metavar="TEXT", help="texts to route")
    parser.add_argument("--model", type=Path, default=None, help="student model directory (default: the embedded student)")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: all cores)")
    parser.add_argument("--json", action="store_true", help="one JSON object per text instead of a table")
    parser.add_argument("--no-cache", action="store_true", help="fit the router now and do not read or write the cache")
    parser.set_defaults(func=run)


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rasa-intent-student"


def router_key(encoder: Any) -> str:
    """SHA-256 of what the fitted router depends on: student files, route data, settings."""
    from rasa_intent_student.constants import MANIFEST_FILE, ROUTE_DATA_DIR
    from rasa_intent_student.manifest import file_sha256, student_checksums

    digest = hashlib.sha256()
    files = {**student_checksums(encoder.model_dir), MANIFEST_FILE: file_sha256(encoder.model_dir / MANIFEST_FILE)}
    settings = [CACHE_VERSION, ROUTER_C, ROUTER_MAX_ITER, ROUTER_RANDOM_STATE, ROUTER_CALIBRATION_FOLDS, encoder.max_seq_length]
    digest.update(json.dumps([files, settings], sort_keys=True).encode())
    for path in sorted((ROUTE_DATA_DIR / "train").glob("*.jsonl")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def fit_router(encoder: Any):
    """Fit the shipped router on the route training split; returns a calibrated LinearModel."""
    require_extra(["sklearn"], "Fitting the router (once per student, then cached)")
    import numpy as np

    from rasa_intent_student.calibration import fit_calibrated
    from rasa_intent_student.routes import load_routes

    rows = load_routes("train")
    labels = sorted({r.label for r in rows})
    y = np.array([labels.index(r.label) for r in rows])
    x = encoder.encode([r.text for r in rows])
    return fit_calibrated(x, y, labels, ROUTER_C, ROUTER_MAX_ITER, ROUTER_RANDOM_STATE, ROUTER_CALIBRATION_FOLDS)


def _read_cached(path: Path):
    """The cached LinearModel, or None when absent or damaged (its SHA-256 is checked)."""
    import numpy as np

    from rasa_intent_student.calibration import LinearModel
    from rasa_intent_student.manifest import file_sha256

    sidecar = path.with_suffix(".sha256")
    if not path.is_file() or not sidecar.is_file():
        return None
    try:
        if sidecar.read_text().strip() != file_sha256(path):
            raise StudentError("checksum mismatch")
        with np.load(path, allow_pickle=False) as data:
            weights, bias = data["weights"], data["bias"]
            labels, temperature = [str(v) for v in data["labels"]], float(data["temperature"])
        if not (np.isfinite(weights).all() and np.isfinite(bias).all() and temperature > 0):
            raise StudentError("non-finite values")
        return LinearModel(weights, bias, labels, temperature)
    except (OSError, ValueError, KeyError) as e:
        logger.warning(f"Ignoring the damaged router cache {path} ({e}); refitting.")
        return None


def _write_cached(path: Path, model: Any) -> None:
    import numpy as np

    from rasa_intent_student.manifest import file_sha256

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, weights=model.weights, bias=model.bias, labels=np.array(model.labels),
                 temperature=np.array(model.temperature))
        path.with_suffix(".sha256").write_text(file_sha256(tmp) + "\n")
        os.replace(tmp, path)
    except OSError as e:  # a read-only home must not stop routing
        logger.warning(f"Could not cache the router in {path.parent}: {e}")


def load_router(encoder: Any, use_cache: bool = True):
    """The shipped router for ``encoder``: from the cache, or fitted (and cached)."""
    path = cache_dir() / f"router-{router_key(encoder)[:32]}.npz"
    model = _read_cached(path) if use_cache else None
    if model is None:
        where = f"; caching it in {path.parent}" if use_cache else ""
        print(f"Fitting the router on the shipped route examples (a few seconds, once per student{where})", file=sys.stderr)
        model = fit_router(encoder)
        if use_cache:
            _write_cached(path, model)
    return model


def route_texts(encoder: Any, model: Any, texts: List[str]) -> List[Dict[str, Any]]:
    """[{"text", "route", "confidences": {label: p}}] with labels in the order of ``ROUTES``."""
    from rasa_intent_student.constants import ROUTES

    probs = model.predict_proba(encoder.encode(texts))
    order = [l for l in ROUTES if l in model.labels] + [l for l in model.labels if l not in ROUTES]
    results = []
    for text, row in zip(texts, probs):
        confidences = {label: float(row[model.labels.index(label)]) for label in order}
        results.append({"text": text, "route": max(confidences, key=confidences.get), "confidences": confidences})
    return results


def run(ns: argparse.Namespace) -> int:
    from rasa_intent_student.encoder import StudentEncoder

    encoder = StudentEncoder.load(ns.model, threads=ns.threads)
    model = load_router(encoder, use_cache=not ns.no_cache)
    for result in route_texts(encoder, model, ns.texts):
        if ns.json:
            print(json.dumps(result, ensure_ascii=False))
        else:
            scores = "  ".join(f"{label} {p:.3f}" for label, p in result["confidences"].items())
            print(f"{result['route']:<7} ({scores})  {result['text']}")
    return 0
