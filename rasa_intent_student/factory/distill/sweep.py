"""Several distillation runs from one pack, side by side, each scored on the fidelity protocols.

For a machine with a GPU (``--device cuda``); the project never needs one. The teacher's targets are
computed once; every run trains in its own process and writes its trained state, its held-out
figures and its protocol scores, beside the teacher's, to ``OUT/summary.json``::

    python -m rasa_intent_student.factory.distill.sweep --pack PACK --out OUT \\
        --runs '{"mse1": {"mse_weight": 1, "xling_weight": 0}, "xling": {}}'
"""
import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict

import numpy as np

from rasa_intent_student.factory.distill.config import DistillConfig

HA_CORPUS_FILE = "ha_corpus.json"  # the Home Assistant intent corpus, expanded where hassil is installed


def pack_encoder(model: Any, pack: Path):
    """``encode(texts)`` over the pack's tokenized extra texts, with a torch model (compact vocabulary)."""
    from rasa_intent_student.factory.distill.pack import load_extra
    from rasa_intent_student.factory.distill.targets import embed

    extra = load_extra(pack)

    def encode(texts):
        return embed(model, [extra[t] for t in texts], 0, "mean", batch_size=256)

    return encode


def score(model: Any, pack: Path) -> Dict[str, Dict[str, float]]:
    from rasa_intent_student.evaluation.crosslingual import run_protocols

    corpus = json.loads((pack / HA_CORPUS_FILE).read_text(encoding="utf-8"))
    return run_protocols(pack_encoder(model, pack), {k: [tuple(r) for r in v] for k, v in corpus.items()})


def worker(pack: Path, run_dir: Path, config: DistillConfig) -> None:
    from safetensors.torch import load_file

    from rasa_intent_student.factory.distill.embeddings import delta_tokens
    from rasa_intent_student.factory.distill.loop import make_student
    from rasa_intent_student.factory.distill.pack import compact_state, load_pack
    from rasa_intent_student.factory.distill.run import STATE_FILE, distill

    result = distill(config, pack=pack, log=lambda line: print(f"[{run_dir.name}] {line}", flush=True))
    teacher, *_ = load_pack(pack)
    state = compact_state(load_file(str(run_dir / STATE_FILE)), pack)
    student = make_student(teacher.model, config.layers, delta_tokens(state))
    student.load_state_dict(state, strict=False)
    student.to(config.device if config.device != "auto" else "cuda")
    scores = score(student, pack)
    (run_dir / "scores.json").write_text(json.dumps({"result": {k: result[k] for k in ("step", "eval", "seconds", "steps_per_s")}, "scores": scores}, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--runs", default="{}", help="JSON {name: {DistillConfig field: value}}")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-minutes", type=float, default=0.0, help="wall-time cap of each run (0: none)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    runs: Dict[str, Dict[str, Any]] = json.loads(args.runs)
    meta = json.loads((args.pack / "pack.json").read_text(encoding="utf-8"))

    def config_of(name: str) -> DistillConfig:
        base = {**asdict(DistillConfig()), "output": str(args.out / name), "device": args.device, "threads": 1,
                "max_seq_length": meta["max_seq_length"], "max_minutes": args.max_minutes}
        return DistillConfig.from_dict({**base, **runs[name]})

    if args.worker:
        worker(args.pack, args.out / args.worker, config_of(args.worker))
        return 0

    import torch

    from rasa_intent_student.factory.distill.loop import resolve_device
    from rasa_intent_student.factory.distill.pack import load_pack
    from rasa_intent_student.factory.distill.run import CACHE_DIR
    from rasa_intent_student.factory.distill.targets import teacher_cache_path, teacher_targets, token_cache_path, token_capture

    started = time.time()
    teacher, data, ids, manifest = load_pack(args.pack)
    teacher.model.to(resolve_device(args.device))
    shared = args.out / "teacher-targets.npy"
    with_tokens = any(config_of(name).token_weight > 0 for name in runs)
    targets, _ = teacher_targets(teacher.model, ids, 0, teacher.pooling, shared, [token_capture(shared)] if with_tokens else [])
    print(f"teacher targets {targets.shape} in {time.time() - started:.0f} s", flush=True)
    procs = {}
    for name in runs:
        config = config_of(name)
        cache = teacher_cache_path(Path(config.output) / CACHE_DIR, teacher.source, teacher.prefix, teacher.pooling, config.max_seq_length, manifest["sha256"])
        cache.parent.mkdir(parents=True, exist_ok=True)
        for own, common in ((cache, shared), (token_cache_path(cache), token_cache_path(shared))):
            if common.exists() and not own.exists():  # one teacher pass for every run
                os.symlink(common.resolve(), own)
        log = open(args.out / f"{name}.log", "w")
        procs[name] = (subprocess.Popen([sys.executable, "-m", "rasa_intent_student.factory.distill.sweep", "--pack", str(args.pack),
                                         "--out", str(args.out), "--runs", args.runs, "--device", args.device,
                                         "--max-minutes", str(args.max_minutes), "--worker", name],
                                        stdout=log, stderr=subprocess.STDOUT), log)
    with torch.no_grad():
        teacher_scores = score(teacher.model, args.pack)
    print(f"teacher scored at {time.time() - started:.0f} s", flush=True)
    summary = {"teacher": teacher_scores, "runs": {}, "pack": {k: meta["manifest"].get(k) for k in ("texts", "by_source", "parallel_pairs")}}
    for name, (proc, log) in procs.items():
        proc.wait()
        log.close()
        path = args.out / name / "scores.json"
        summary["runs"][name] = json.loads(path.read_text()) if path.is_file() else {"failed": (args.out / f"{name}.log").read_text()[-3000:]}
        summary["runs"][name]["overrides"] = runs[name]
        print(f"{name} done at {time.time() - started:.0f} s", flush=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for name, run in summary["runs"].items():
        if "scores" in run:
            means = {p: np.mean(list(v.values())) / np.mean(list(summary["teacher"][p].values())) for p, v in run["scores"].items()}
            held = run["result"]["eval"]
            print(f"{name:<24} " + " ".join(f"{p}={m:.3f}" for p, m in means.items()) + f" | mse={held['mse']:.4f} xling={held.get('xling', float('nan')):.4f} steps/s={run['result']['steps_per_s']}")
        else:
            print(f"{name}: FAILED\n{run['failed']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
