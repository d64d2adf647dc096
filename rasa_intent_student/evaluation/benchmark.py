"""Encoder speed: single-utterance latency percentiles, batch throughput, file size, peak memory.

Each model is measured in a fresh Python subprocess (``python -m
rasa_intent_student.evaluation.benchmark``) so that its peak resident memory
(``getrusage`` maxrss) is its own and not the sum of every model loaded before.
"""
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from rasa_intent_student.constants import (
    BENCH_BATCH_SIZE,
    BENCH_LATENCY_RUNS,
    BENCH_WARMUP_RUNS,
    MODEL_FILE,
    TOKENIZER_FILE,
)
from rasa_intent_student.errors import StudentError

PERCENTILES = (50, 90, 99)


def percentiles(values_ms: Sequence[float], qs: Sequence[int] = PERCENTILES) -> Dict[str, float]:
    """{"p50": ..., "p90": ..., "p99": ...} with numpy's linear interpolation between order statistics."""
    if len(values_ms) == 0:
        raise StudentError("No timings to summarize; run at least one measurement.")
    for q in qs:
        if not 0 <= q <= 100:
            raise StudentError(f"Percentile {q} is outside [0, 100].")
    return {f"p{q}": float(np.percentile(np.asarray(values_ms, dtype=np.float64), q)) for q in qs}


def time_calls(fn: Callable[[str], object], texts: Sequence[str], runs: int, warmup: int = 0) -> List[float]:
    """Call ``fn`` on ``runs`` texts (cycling through ``texts``), after ``warmup`` untimed calls.

    Returns:
        wall-clock milliseconds of each timed call.
    """
    if not texts:
        raise StudentError("No texts to time; pass at least one.")
    for i in range(warmup):
        fn(texts[i % len(texts)])
    timings = []
    for i in range(runs):
        text = texts[i % len(texts)]
        start = time.perf_counter()
        fn(text)
        timings.append((time.perf_counter() - start) * 1000.0)
    return timings


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports maxrss in KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024.0 if sys.platform != "darwin" else kib / 2**20


@dataclasses.dataclass
class ModelSpeed:
    """Speed and size of one encoder (a student directory or a peer) on this machine.

    Attributes:
        layers: transformer layers kept; None for a peer that has none (``evaluation.peers``).
        latency_ms: p50/p90/p99 of single-utterance ``encode`` with one thread.
        throughput: sentences per second, batches of ``batch_size``, ``threads`` threads.
        model_mb, tokenizer_mb: file sizes in MB (10^6 bytes) (a peer: its weights and tokenizer files).
        peak_rss_mb: peak resident memory (MiB) of a process that loaded the model and ran the latency loop.
    """

    name: str
    path: str
    dim: int
    layers: Optional[int]
    quantization: str
    model_mb: float
    tokenizer_mb: float
    load_s: float
    latency_ms: Dict[str, float]
    throughput: float
    batch_size: int
    threads: Optional[int]
    peak_rss_mb: float

    def to_dict(self) -> Dict[str, object]:
        return dataclasses.asdict(self)


def measure_model(
    name: str,
    model_dir: Union[str, Path],
    texts: Sequence[str],
    runs: int = BENCH_LATENCY_RUNS,
    batch_size: int = BENCH_BATCH_SIZE,
    threads: Optional[int] = None,
) -> ModelSpeed:
    """Measure one model, a directory or ``peer:KEY``, in this process (``measure_in_subprocess``: a clean maxrss)."""
    from rasa_intent_student.evaluation.peers import is_peer, load_encoder

    start = time.perf_counter()
    encoder = load_encoder(model_dir, threads=1)
    load_s = time.perf_counter() - start
    latency = percentiles(time_calls(encoder.encode, texts, runs, warmup=BENCH_WARMUP_RUNS))
    rss = peak_rss_mb()  # before the batch session, so it is one model in one session
    del encoder

    batch_encoder = load_encoder(model_dir, threads=threads)
    batch_encoder.encode(list(texts[:batch_size]), batch_size=batch_size)  # warm-up
    start = time.perf_counter()
    batch_encoder.encode(list(texts), batch_size=batch_size)
    throughput = len(texts) / (time.perf_counter() - start)
    if is_peer(model_dir):  # no manifest: the adapter says what it is and where its weights are
        layers, quantization = batch_encoder.layers, batch_encoder.quantization
        model_file, tokenizer_file = batch_encoder.model_file, batch_encoder.tokenizer_file
    else:
        m = batch_encoder.manifest
        layers, quantization = len(m.layers_kept), m.quantization
        model_file, tokenizer_file = Path(model_dir) / MODEL_FILE, Path(model_dir) / TOKENIZER_FILE
    return ModelSpeed(
        name=name,
        path=str(Path(model_dir)),
        dim=batch_encoder.dim,
        layers=layers,
        quantization=quantization,
        model_mb=model_file.stat().st_size / 1e6,
        tokenizer_mb=tokenizer_file.stat().st_size / 1e6,
        load_s=load_s,
        latency_ms=latency,
        throughput=throughput,
        batch_size=batch_size,
        threads=threads,
        peak_rss_mb=rss,
    )


def measure_in_subprocess(
    name: str,
    model_dir: Union[str, Path],
    texts: Sequence[str],
    runs: int = BENCH_LATENCY_RUNS,
    batch_size: int = BENCH_BATCH_SIZE,
    threads: Optional[int] = None,
) -> ModelSpeed:
    """Run ``measure_model`` in a fresh interpreter; texts go in on stdin, the result comes back as JSON."""
    request = {"name": name, "model_dir": str(model_dir), "texts": list(texts), "runs": runs,
               "batch_size": batch_size, "threads": threads}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "rasa_intent_student.evaluation.benchmark"],
        input=json.dumps(request), capture_output=True, text=True, env=env, check=False,
    )
    if proc.returncode != 0:
        raise StudentError(f"Benchmarking {name} ({model_dir}) failed:\n{proc.stderr.strip()[-2000:]}")
    return ModelSpeed(**json.loads(proc.stdout.strip().splitlines()[-1]))


def _worker() -> None:
    request = json.loads(sys.stdin.read())
    print(json.dumps(measure_model(**request).to_dict()))


if __name__ == "__main__":
    _worker()
