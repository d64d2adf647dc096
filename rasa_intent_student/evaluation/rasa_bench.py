"""Rasa end to end: train an NLU model with our pipeline and with Rasa's default, then time ``parse_message``.

Each pipeline trains and parses in a fresh subprocess (``python -m
rasa_intent_student.evaluation.rasa_bench``), so TensorFlow state and memory
do not leak from one pipeline into the other.
"""
import asyncio
import dataclasses
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from rasa_intent_student.evaluation.benchmark import peak_rss_mb, percentiles
from rasa_intent_student.evaluation.metrics import accuracy, macro_f1
from rasa_intent_student.routes import RouteExample
from rasa_intent_student.errors import StudentError

logger = logging.getLogger(__name__)

STUDENT_PIPELINE = "student"
DIET_PIPELINE = "diet"


def pipeline_config(kind: str, model_dir: Optional[str] = None, diet_epochs: int = 100) -> Dict[str, Any]:
    """The config.yml content of one pipeline.

    ``student``: StudentFeaturizer + RouteClassifier (sentence features only, no tokenizer needed).
    ``diet``: Rasa's default NLU recipe as ``rasa init`` writes it, minus entity/response parts:
    WhitespaceTokenizer, word and char_wb (1-4) CountVectorsFeaturizers, DIETClassifier.
    """
    if kind == STUDENT_PIPELINE:
        featurizer: Dict[str, Any] = {"name": "rasa_intent_student.StudentFeaturizer"}
        if model_dir:
            featurizer["model"] = model_dir
        pipeline = [featurizer, {"name": "rasa_intent_student.RouteClassifier"}]
    elif kind == DIET_PIPELINE:
        pipeline = [
            {"name": "WhitespaceTokenizer"},
            {"name": "CountVectorsFeaturizer"},
            {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4},
            {"name": "DIETClassifier", "epochs": diet_epochs, "entity_recognition": False, "constrain_similarities": True},
        ]
    else:
        raise StudentError(f"Unknown pipeline '{kind}'. Valid options: {[STUDENT_PIPELINE, DIET_PIPELINE]}.")
    return {"recipe": "default.v1", "language": "xx", "assistant_id": f"bench_{kind}", "pipeline": pipeline, "policies": []}


@dataclasses.dataclass
class RasaRun:
    """One pipeline: training time, per-message parse latency, and its scores on the parsed messages."""

    pipeline: str
    train_n: int
    train_s: float
    load_s: float
    parse_ms: Dict[str, float]
    parse_n: int
    accuracy: float
    macro_f1: float
    model_mb: float
    peak_rss_mb: float

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def write_nlu(examples: Sequence[RouteExample], path: Path) -> None:
    """Rasa YAML NLU data, written by Rasa's own writer so that odd characters are escaped."""
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    messages = [Message.build(text=e.text, intent=e.label) for e in examples]
    path.write_text(RasaYAMLWriter().dumps(TrainingData(messages)), encoding="utf-8")


def train_and_parse(
    pipeline: str,
    train: Sequence[RouteExample],
    test: Sequence[RouteExample],
    workdir: Path,
    model_dir: Optional[str] = None,
    diet_epochs: int = 100,
) -> RasaRun:
    """Train one pipeline with ``rasa.model_training.train_nlu`` and parse every test text once (in this process)."""
    import yaml
    from rasa.core.agent import Agent
    from rasa.model_training import train_nlu

    workdir.mkdir(parents=True, exist_ok=True)
    config_path, nlu_path = workdir / "config.yml", workdir / "nlu.yml"
    config_path.write_text(yaml.safe_dump(pipeline_config(pipeline, model_dir, diet_epochs), allow_unicode=True), encoding="utf-8")
    write_nlu(train, nlu_path)

    start = time.perf_counter()
    model_path = train_nlu(str(config_path), str(nlu_path), str(workdir / "models"), fixed_model_name=pipeline)
    train_s = time.perf_counter() - start
    if not model_path:
        raise StudentError(f"rasa train_nlu produced no model for the {pipeline} pipeline; see the log above.")

    start = time.perf_counter()
    agent = Agent.load(model_path)
    load_s = time.perf_counter() - start
    loop = asyncio.new_event_loop()
    for example in test[:10]:  # warm-up: first calls build TF functions
        loop.run_until_complete(agent.parse_message(example.text))
    timings, predicted = [], []
    for example in test:
        start = time.perf_counter()
        result = loop.run_until_complete(agent.parse_message(example.text))
        timings.append((time.perf_counter() - start) * 1000.0)
        predicted.append((result.get("intent") or {}).get("name") or "")
    loop.close()
    truth = [e.label for e in test]
    return RasaRun(
        pipeline=pipeline,
        train_n=len(train),
        train_s=train_s,
        load_s=load_s,
        parse_ms=percentiles(timings),
        parse_n=len(test),
        accuracy=accuracy(truth, predicted),
        macro_f1=macro_f1(truth, predicted),
        model_mb=Path(model_path).stat().st_size / 1e6,
        peak_rss_mb=peak_rss_mb(),
    )


def run_in_subprocess(
    pipeline: str,
    train: Sequence[RouteExample],
    test: Sequence[RouteExample],
    model_dir: Optional[str] = None,
    diet_epochs: int = 100,
    workdir: Optional[Path] = None,
) -> RasaRun:
    """``train_and_parse`` in a fresh interpreter; examples go in on stdin, the result comes back as JSON."""
    with tempfile.TemporaryDirectory(prefix=f"ris-bench-{pipeline}-") as tmp:
        request = {
            "pipeline": pipeline, "train": [list(e) for e in train], "test": [list(e) for e in test],
            "workdir": str(workdir or tmp), "model_dir": model_dir, "diet_epochs": diet_epochs,
        }
        # A fresh Rasa training cache: a cached component from an earlier run would make training look instant.
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "RASA_CACHE_DIRECTORY": str(Path(tmp, "rasa-cache"))}
        proc = subprocess.run(
            [sys.executable, "-m", "rasa_intent_student.evaluation.rasa_bench"],
            input=json.dumps(request, ensure_ascii=False), capture_output=True, text=True, env=env, check=False,
        )
    if proc.returncode != 0:
        raise StudentError(f"The Rasa benchmark of the {pipeline} pipeline failed:\n{proc.stderr.strip()[-3000:]}")
    return RasaRun(**json.loads(proc.stdout.strip().splitlines()[-1]))


def _worker() -> None:
    request = json.loads(sys.stdin.read())
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    run = train_and_parse(
        request["pipeline"],
        [RouteExample(*row) for row in request["train"]],
        [RouteExample(*row) for row in request["test"]],
        Path(request["workdir"]),
        request["model_dir"],
        request["diet_epochs"],
    )
    print(json.dumps(run.to_dict()))


if __name__ == "__main__":
    _worker()
