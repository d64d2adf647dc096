"""``rasa-intent-student bench`` as one library call: encoder speed, Rasa end to end, encoder quality."""
import dataclasses
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from rasa_intent_student.constants import (
    BENCH_BATCH_SIZE,
    BENCH_CACHE_DIR,
    BENCH_LATENCY_RUNS,
    DEFAULT_MODEL_DIR,
    LANGUAGES,
    QUALITY_SEEDS,
    QUALITY_SHOTS,
    REFERENCE_STUDENT_FP32_DIR,
    REFERENCE_TEACHER_DIR,
)
from rasa_intent_student.errors import install_hint
from rasa_intent_student.evaluation.peers import ModelSource
from rasa_intent_student.machine import describe_machine

logger = logging.getLogger(__name__)

DEFAULT_MODELS = {
    "student-int8": DEFAULT_MODEL_DIR,
    "student-fp32": REFERENCE_STUDENT_FP32_DIR,
    "teacher-fp32": REFERENCE_TEACHER_DIR,
}
# How to get each default reference model: what a pip user runs first, then the source checkout's make target.
REFERENCE_HINTS = {
    "teacher-fp32": f"{install_hint('factory')}, then rasa-intent-student reference --teacher-only (rebuilds the teacher offline "
    "into ./artifacts/teacher-fp32; in a source checkout: make reference)",
    "student-fp32": "it is the FP32 graph the shipped student was quantized from, a by-product of building it in a "
    "source checkout (make model, then make reference); to compare your own builds, pass --models NAME=DIR",
}


@dataclasses.dataclass
class BenchConfig:
    """What to measure. ``models`` maps a display name to a StudentEncoder directory or a peer, ``peer:KEY``
    (``evaluation.peers``); None: ``DEFAULT_MODELS``."""

    models: Optional[Dict[str, ModelSource]] = None
    runs: int = BENCH_LATENCY_RUNS
    batch_size: int = BENCH_BATCH_SIZE
    threads: Optional[int] = None
    text_limit: Optional[int] = None
    skip_speed: bool = False
    skip_rasa: bool = False
    skip_quality: bool = False
    skip_protocols: bool = False
    rasa_model: Optional[Path] = None
    diet_epochs: int = 100
    train_limit: Optional[int] = None
    parse_limit: Optional[int] = None
    languages: Sequence[str] = LANGUAGES
    shots: int = QUALITY_SHOTS
    seeds: Sequence[int] = QUALITY_SEEDS
    cache_dir: Optional[Path] = BENCH_CACHE_DIR
    progress: bool = True
    xling_shots: Sequence[int] = ()  # with the protocols: intents_xling+k for each k (English + k per language)


def resolve_models(models: Optional[Dict[str, ModelSource]]) -> Dict[str, ModelSource]:
    """The given models (each directory must exist, each peer be known and installed), or the default three minus
    those not exported yet."""
    from rasa_intent_student.encoder import check_model_dir
    from rasa_intent_student.evaluation.peers import check_source

    if models:
        return {name: check_source(source) for name, source in models.items()}
    found = {}
    for name, path in DEFAULT_MODELS.items():
        try:
            found[name] = check_model_dir(path)
        except FileNotFoundError:
            logger.warning("Skipping %s: no model at %s. To get it: %s.", name, path, REFERENCE_HINTS.get(name))
    if not found:
        raise FileNotFoundError(f"No model to benchmark: none of {[str(p) for p in DEFAULT_MODELS.values()]} exists.")
    return found


def every_kth(items: Sequence[Any], limit: Optional[int]) -> List[Any]:
    """At most ``limit`` items spread evenly over the sequence (files are grouped by language and label)."""
    items = list(items)
    if not limit or limit >= len(items):
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def run_bench(config: BenchConfig) -> Dict[str, Any]:
    """Run the parts not skipped; returns {"machine", "speed", "rasa", "quality", "fidelity"} (JSON-ready)."""
    from tqdm.auto import tqdm

    from rasa_intent_student.routes import load_routes

    result: Dict[str, Any] = {"machine": describe_machine()}
    models = resolve_models(config.models) if not (config.skip_speed and config.skip_quality and config.skip_protocols) else {}
    dev = load_routes("dev")

    if not config.skip_speed:
        from rasa_intent_student.evaluation.benchmark import measure_in_subprocess

        texts = [e.text for e in every_kth(dev, config.text_limit)]
        result["speed"] = [
            measure_in_subprocess(name, path, texts, config.runs, config.batch_size, config.threads).to_dict()
            for name, path in tqdm(models.items(), desc="speed", disable=not config.progress)
        ]

    if not config.skip_rasa:
        from rasa_intent_student.evaluation.rasa_bench import DIET_PIPELINE, STUDENT_PIPELINE, run_in_subprocess

        train = every_kth(load_routes("train"), config.train_limit)
        test = every_kth(dev, config.parse_limit)
        model_dir = str(config.rasa_model) if config.rasa_model else None
        result["rasa"] = [
            run_in_subprocess(pipeline, train, test, model_dir, config.diet_epochs).to_dict()
            for pipeline in tqdm([STUDENT_PIPELINE, DIET_PIPELINE], desc="rasa train+parse", disable=not config.progress)
        ]

    if not config.skip_quality:
        from rasa_intent_student.evaluation.hassil_corpus import corpus_versions
        from rasa_intent_student.evaluation.quality import default_corpus, evaluate_quality

        cache = Path(config.cache_dir) / "quality" if config.cache_dir else None
        corpus = default_corpus(config.languages, cache, config.shots)
        quality = evaluate_quality(models, corpus, config.shots, config.seeds, cache, config.threads, config.progress)
        result["quality"] = {
            "source": "home-assistant-intents sentence templates expanded with hassil (Apache-2.0)",
            "versions": corpus_versions(),
            "shots": config.shots,
            "seeds": list(config.seeds),
            "models": [q.to_dict() for q in quality],
        }
        teacher = next((path for name, path in models.items() if name.startswith("teacher")), None)
        if teacher is not None:
            result["fidelity"] = teacher_fidelity(models, teacher, [e.text for e in dev])

    if not config.skip_protocols:
        result["protocols"] = run_fidelity_protocols(models, config)
    return result


def run_fidelity_protocols(models: Dict[str, ModelSource], config: BenchConfig) -> Dict[str, Any]:
    """Every model on ``crosslingual.PROTOCOLS`` (+ ``intents_xling+k``), its ratio to the first ``teacher*``, and
    its memory_xling difference to the first model with a bootstrap interval over the facts."""
    import numpy as np
    from tqdm.auto import tqdm

    from rasa_intent_student.evaluation.crosslingual import PROTOCOLS, intents_xling_shots, memory_hits, ratios, run_protocols
    from rasa_intent_student.evaluation.metrics import paired_bootstrap
    from rasa_intent_student.evaluation.peers import fingerprint as source_fingerprint, load_encoder
    from rasa_intent_student.evaluation.quality import cached_embeddings, default_corpus

    cache = Path(config.cache_dir) / "quality" if config.cache_dir else None
    corpus = default_corpus(config.languages, cache, config.shots)
    scores, fact_hits = {}, {}
    for name, path in tqdm(models.items(), desc="fidelity protocols", disable=not config.progress):
        encoder = load_encoder(path, threads=config.threads)
        fingerprint = source_fingerprint(path)
        encode = lambda texts: cached_embeddings(encoder, list(texts), cache, fingerprint)  # noqa: E731
        hits = memory_hits(encode, languages=config.languages)
        scores[name] = run_protocols(encode, corpus, config.languages, hits)
        if config.xling_shots:
            scores[name].update(intents_xling_shots(encode, corpus, config.xling_shots, config.seeds))
        # one figure per fact (mean over languages): the facts, not the languages, are the independent items
        fact_hits[name] = np.mean(list(hits.values()), axis=0)
    teacher = next((name for name in models if name.startswith("teacher")), None)
    names = list(PROTOCOLS) + [f"intents_xling+{k}" for k in config.xling_shots]
    out: Dict[str, Any] = {"protocols": names, "scores": scores, "reference": teacher}
    if teacher is not None:
        out["ratios"] = {name: ratios(s, scores[teacher]) for name, s in scores.items() if name != teacher}
    first = next(iter(models))
    out["memory_differences"] = {"to": first, "facts": int(fact_hits[first].size), "differences": {
        name: paired_bootstrap(hits, fact_hits[first])._asdict() for name, hits in fact_hits.items() if name != first}}
    return out


def teacher_fidelity(models: Dict[str, ModelSource], teacher_dir: ModelSource,
                     texts: List[str]) -> Dict[str, Dict[str, float]]:
    """Cosine and MSE of each model's embeddings against the teacher's, on the dev texts (same-dim models only)."""
    from rasa_intent_student.evaluation.fidelity import TeacherFidelityEvaluator
    from rasa_intent_student.evaluation.peers import load_encoder

    teacher = load_encoder(teacher_dir)
    evaluator = TeacherFidelityEvaluator(texts, teacher=teacher)
    scores = {}
    for name, path in models.items():
        student = load_encoder(path)
        if student.dim == teacher.dim:
            scores[name] = evaluator(student)
    return scores
