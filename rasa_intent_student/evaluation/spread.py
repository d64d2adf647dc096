"""The spread over training seeds: how far a student's ratios to the teacher move when only the seed changes.

Distil the same recipe several times with ``distill --seed K --corpus-seed 0`` (same corpus and teacher
cache, other batch order and held-out split), build each, run ``bench --json`` over them with the
teacher, then:

    python -m rasa_intent_student.evaluation.spread bench.txt --runs seed0 seed1 seed2

A difference between two recipes smaller than about twice the standard deviation printed here is
within what a second seed of the same recipe would give.
"""
import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from rasa_intent_student.errors import StudentError
from rasa_intent_student.evaluation.bench_output import load_bench_protocols
from rasa_intent_student.evaluation.tables import format_table


def seed_spread(protocols: Mapping[str, Any], runs: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """Per protocol: each run's mean ratio, their mean, sample SD and range; the per-language SD; each run's worst language."""
    ratios = protocols.get("ratios", {})
    missing = [run for run in runs if run not in ratios]
    if len(runs) < 2 or missing:
        raise StudentError(f"The spread needs at least two benchmarked runs with ratios to the teacher; missing {missing} "
                           f"of {list(runs)}. Valid names in this output: {sorted(ratios)}.")
    out: Dict[str, Dict[str, Any]] = {}
    for protocol in protocols["protocols"]:
        means = [float(ratios[run][protocol]["mean"]) for run in runs]
        languages = sorted(set.intersection(*(set(ratios[run][protocol]) - {"mean"} for run in runs)))
        per_language = {lang: float(np.std([ratios[run][protocol][lang] for run in runs], ddof=1)) for lang in languages}
        worst = [min((ratios[run][protocol][lang], lang) for lang in languages) for run in runs]
        noisiest = max(per_language, key=per_language.get)
        out[protocol] = {
            "runs": dict(zip(runs, means)),
            "mean": float(np.mean(means)),
            "sd": float(np.std(means, ddof=1)),
            "range": max(means) - min(means),
            "language_sd_median": float(np.median(list(per_language.values()))),
            "language_sd_max": (noisiest, per_language[noisiest]),
            "worst_language": dict(zip(runs, worst)),
        }
    return out


def format_spread(spread: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per protocol: the runs' mean ratios, their mean +- SD and range, the per-language SD, the worst languages."""
    runs = list(next(iter(spread.values()))["runs"])
    rows: List[List[str]] = []
    for protocol, s in spread.items():
        lang, lang_sd = s["language_sd_max"]
        worst = ", ".join(f"{lang} {ratio:.3f}" for ratio, lang in s["worst_language"].values())
        rows.append([protocol, *(f"{s['runs'][run]:.3f}" for run in runs), f"{s['mean']:.3f} ± {s['sd']:.3f}",
                     f"{s['range']:.3f}", f"{s['language_sd_median']:.3f} (max {lang} {lang_sd:.3f})", worst])
    return format_table(["protocol (ratio to the teacher)", *runs, "mean ± SD", "range", "SD per language: median", "worst language per run"], rows)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rasa_intent_student.evaluation.spread", description=__doc__.split("\n\n")[0])
    parser.add_argument("bench_output", type=Path, help="a saved `rasa-intent-student bench --json` output")
    parser.add_argument("--runs", nargs="+", required=True, help="model names of the runs that differ only by the seed (two or more)")
    args = parser.parse_args(argv)
    protocols = load_bench_protocols(args.bench_output)
    if protocols is None:
        raise StudentError(f"{args.bench_output} has no fidelity protocols; run bench without --skip-protocols.")
    print(f"Spread over {len(args.runs)} training seeds (ratio of the mean score to the teacher's; SD with n - 1)\n")
    print(format_spread(seed_spread(protocols, args.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
