"""Encoder quality, MTEB MassiveIntentClassification style, on the Home Assistant intent corpus.

For each language: embed every sentence once (frozen encoder), then for each
seed pick ``shots`` sentences per intent to train a logistic regression and
score accuracy on the rest. The score of a language is the mean over seeds.
"""
import dataclasses
import hashlib
import logging
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from rasa_intent_student.constants import QUALITY_MAX_PER_INTENT, QUALITY_SEEDS, QUALITY_SHOTS
from rasa_intent_student.evaluation.peers import ModelSource
from rasa_intent_student.evaluation.router import LogisticRouter
from rasa_intent_student.errors import StudentError
from rasa_intent_student.manifest import student_files

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class QualityResult:
    """Few-shot intent accuracy of one encoder.

    Attributes:
        per_language: lang -> {"accuracy": mean over seeds, "std": over seeds, "n": sentences, "intents": count}.
        mean_accuracy: unweighted mean over languages.
    """

    name: str
    path: str
    per_language: Dict[str, Dict[str, float]]
    mean_accuracy: float

    def to_dict(self) -> Dict[str, object]:
        return dataclasses.asdict(self)


def few_shot_split(labels: Sequence[str], shots: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Indices of ``shots`` random examples per label (train) and of all the others (test).

    Raises:
        ValueError: a label has no more than ``shots`` examples, so nothing would be left to test.
    """
    rng = np.random.default_rng(seed)
    train: List[int] = []
    by_label: Dict[str, List[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    for label, idx in sorted(by_label.items()):
        if len(idx) <= shots:
            raise StudentError(f"Intent {label!r} has {len(idx)} examples; few-shot needs more than shots={shots}.")
        train.extend(rng.permutation(idx)[:shots].tolist())
    train_idx = np.array(sorted(train))
    test_idx = np.setdiff1d(np.arange(len(labels)), train_idx)
    return train_idx, test_idx


def few_shot_accuracy(embeddings: np.ndarray, labels: Sequence[str], shots: int, seeds: Sequence[int]) -> List[float]:
    """Accuracy of logistic regression trained on ``shots`` per label, one value per seed."""
    labels_arr = np.asarray(labels)
    scores = []
    for seed in seeds:
        train_idx, test_idx = few_shot_split(labels, shots, seed)
        router = LogisticRouter(seed=seed).fit(embeddings[train_idx], labels_arr[train_idx].tolist())
        predicted = np.asarray(router.predict(embeddings[test_idx]))
        scores.append(float(np.mean(predicted == labels_arr[test_idx])))
    return scores


def model_fingerprint(model_dir: Path) -> str:
    """Changes when a student file changes (path, size, mtime), without hashing 100 MB: model, tokenizer, and
    manifest and language offsets (which change what ``encode`` returns)."""
    parts = [str(model_dir.resolve())]
    for path in student_files(model_dir):
        stat = path.stat()
        parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def cached_embeddings(encoder, texts: List[str], cache_dir: Optional[Path], fingerprint: str) -> np.ndarray:
    """``encoder.encode(texts)``, stored as .npy keyed by model fingerprint and a hash of the texts."""
    if cache_dir is None:
        return encoder.encode(texts)
    digest = hashlib.sha1("\n".join(texts).encode("utf-8")).hexdigest()[:16]
    path = cache_dir / f"emb-{fingerprint}-{digest}.npy"
    if path.is_file():
        return np.load(path)
    embeddings = encoder.encode(texts)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Write then rename: a concurrent bench never reads a half-written file.
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npy")
    np.save(partial, embeddings)
    os.replace(partial, path)
    return embeddings


def evaluate_quality(
    models: Dict[str, ModelSource],
    corpus: Dict[str, List[Tuple[str, str]]],
    shots: int = QUALITY_SHOTS,
    seeds: Sequence[int] = QUALITY_SEEDS,
    cache_dir: Optional[Path] = None,
    threads: Optional[int] = None,
    progress: bool = True,
) -> List[QualityResult]:
    """Few-shot accuracy per language for each named model (a StudentEncoder directory or ``peer:KEY``)."""
    from tqdm.auto import tqdm

    from rasa_intent_student.evaluation.peers import fingerprint as source_fingerprint, load_encoder

    results = []
    for name, model_dir in models.items():
        encoder = load_encoder(model_dir, threads=threads)
        fingerprint = source_fingerprint(model_dir)
        per_language: Dict[str, Dict[str, float]] = {}
        for lang in tqdm(list(corpus), desc=f"quality {name}", disable=not progress, leave=False):
            labels = [intent for intent, _ in corpus[lang]]
            texts = [text for _, text in corpus[lang]]
            embeddings = cached_embeddings(encoder, texts, cache_dir, fingerprint)
            scores = few_shot_accuracy(embeddings, labels, shots, seeds)
            per_language[lang] = {
                "accuracy": float(np.mean(scores)),
                "std": float(np.std(scores)),
                "n": len(texts),
                "intents": len(set(labels)),
            }
        mean = float(np.mean([s["accuracy"] for s in per_language.values()])) if per_language else float("nan")
        results.append(QualityResult(name, str(model_dir), per_language, mean))
        logger.info("%s: mean few-shot accuracy %.3f over %d languages", name, mean, len(per_language))
    return results


def default_corpus(languages: Sequence[str], cache_dir: Optional[Path], shots: int = QUALITY_SHOTS) -> Dict[str, List[Tuple[str, str]]]:
    """The Home Assistant corpus: up to QUALITY_MAX_PER_INTENT sentences per intent, at least 2 x shots."""
    from rasa_intent_student.evaluation.hassil_corpus import load_corpus

    return load_corpus(list(languages), QUALITY_MAX_PER_INTENT, 2 * shots, cache_dir)
