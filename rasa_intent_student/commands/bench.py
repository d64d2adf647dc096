"""``rasa-intent-student bench``: speed, memory and size of the encoders, Rasa parse time, and encoder quality."""
import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional

from rasa_intent_student.errors import StudentError, require_extra
from rasa_intent_student.evaluation.peers import PEER_PREFIX, PEERS, ModelSource, is_peer, peer_key, require_peer


def parse_models(values: Optional[List[str]]) -> Optional[Dict[str, ModelSource]]:
    """``NAME=DIR``, ``DIR`` (named after the directory), ``NAME=peer:KEY`` or ``peer:KEY`` (named KEY) ->
    {name: path, or "peer:KEY" for a peer encoder}; an unknown peer is an error that lists the valid ones."""
    if not values:
        return None
    models: Dict[str, ModelSource] = {}
    for value in values:
        name, sep, source = value.partition("=")
        if not sep:
            source = value
            name = peer_key(value) if is_peer(value) else Path(value).name
        if not name or not source:
            raise StudentError(f"--models entry {value!r} is invalid; use NAME=DIR, DIR or NAME=peer:KEY.")
        models[name] = PEER_PREFIX + peer_key(source) if is_peer(source) else Path(source)
    return models


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="latency, throughput, size and memory of the encoders; Rasa parse/train time; few-shot quality",
        description="Benchmark student INT8, student FP32 and the teacher on this machine. Ratios travel between "
        "machines better than absolute times.",
    )
    parser.add_argument("--models", nargs="+", metavar="NAME=DIR", help="StudentEncoder directories (default: "
                        "student-int8, the embedded student, and student-fp32 and teacher-fp32 where exported into "
                        "./artifacts; a missing one is skipped with how to get it), or peer encoders to compare with, "
                        f"NAME=peer:KEY (the [peers] extra; KEY: {', '.join(PEERS)})")
    parser.add_argument("--skip-speed", action="store_true", help="skip encoder latency/throughput/memory")
    parser.add_argument("--skip-rasa", action="store_true",
                        help="skip training and parsing with Rasa (which needs the [rasa] extra)")
    parser.add_argument("--skip-quality", action="store_true", help="skip the few-shot intent benchmark")
    parser.add_argument("--skip-protocols", action="store_true", help="skip the fidelity protocols (route, cross-lingual "
                        "intents, cross-lingual memory retrieval; ratios to the model named teacher*; memory_xling differences to "
                        "the first model, with a bootstrap interval over the facts)")
    parser.add_argument("--xling-shots", type=int, nargs="+", default=(), metavar="K",
                        help="with the protocols, also intents_xling+K: a router trained on the English sentences plus "
                        "K per intent in each language, tested on the rest (e.g. 0 1 3)")
    parser.add_argument("--runs", type=int, default=None, help="single-utterance encodes per model")
    parser.add_argument("--text-limit", type=int, default=None, help="dev texts used for timing (default: all)")
    parser.add_argument("--threads", type=int, default=None, help="threads for batch throughput (latency is always 1 thread)")
    parser.add_argument("--rasa-model", type=Path, default=None, help="student used in the Rasa pipeline (default: embedded)")
    parser.add_argument("--diet-epochs", type=int, default=100, help="DIETClassifier epochs (rasa init uses 100)")
    parser.add_argument("--train-limit", type=int, default=None, help="training rows for both Rasa pipelines (default: all)")
    parser.add_argument("--parse-limit", type=int, default=None, help="dev messages parsed per pipeline (default: all)")
    parser.add_argument("--languages", nargs="+", default=None, help="languages of the quality benchmark")
    parser.add_argument("--seeds", type=int, default=None, help="few-shot repetitions (seeds 0..N-1)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="cache of corpus expansions and embeddings")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="also print all results as one JSON object on the last line")
    parser.set_defaults(func=run)


def require_extras(ns: argparse.Namespace) -> None:
    """Name the extra a requested part needs before any work (as ``evaluate`` does)."""
    require_extra(["tqdm"], "`bench`")
    if not (ns.skip_quality and ns.skip_protocols):
        require_extra(["sklearn", "hassil", "home_assistant_intents"],
                      "The quality benchmark and the fidelity protocols (skip them with --skip-quality --skip-protocols)")
    if not ns.skip_rasa:
        require_extra(["rasa"], "The Rasa comparison (Python 3.10; skip it with --skip-rasa)", extra="rasa")
    for value in ns.models or ():
        source = value.partition("=")[2] or value
        if is_peer(source):
            require_peer(source)


def run(ns: argparse.Namespace) -> int:
    require_extras(ns)
    from rasa_intent_student.evaluation import tables
    from rasa_intent_student.evaluation.suite import BenchConfig, run_bench

    config = BenchConfig(
        models=parse_models(ns.models),
        skip_speed=ns.skip_speed,
        skip_rasa=ns.skip_rasa,
        skip_quality=ns.skip_quality,
        skip_protocols=ns.skip_protocols,
        threads=ns.threads,
        text_limit=ns.text_limit,
        rasa_model=ns.rasa_model,
        diet_epochs=ns.diet_epochs,
        train_limit=ns.train_limit,
        parse_limit=ns.parse_limit,
        progress=not ns.no_progress,
        xling_shots=tuple(ns.xling_shots),
    )
    if ns.runs is not None:
        config.runs = ns.runs
    if ns.languages:
        config.languages = ns.languages
    if ns.seeds is not None:
        config.seeds = tuple(range(ns.seeds))
    if ns.cache_dir is not None:
        config.cache_dir = ns.cache_dir
    result = run_bench(config)
    print(f"machine: {result['machine']}")
    if "speed" in result:
        print("\nEncoder speed (latency: one utterance, 1 thread; throughput: batches of "
              f"{config.batch_size}, {config.threads or 'all'} threads)\n")
        print(tables.format_speed(result["speed"]))
    if "rasa" in result:
        print("\nRasa: train_nlu on the same data, then agent.parse_message per dev message\n")
        print(tables.format_rasa(result["rasa"]))
    if "quality" in result:
        q = result["quality"]
        print(f"\nFew-shot intent accuracy ({q['shots']} per intent, {len(q['seeds'])} seeds, logistic regression on "
              f"frozen embeddings); corpus: {q['source']}, {q['versions']}\n")
        print(tables.format_quality(q))
    if "fidelity" in result:
        print("\nEmbedding fidelity to the teacher on the route dev split\n")
        print(tables.format_fidelity(result["fidelity"]))
    if "protocols" in result:
        p = result["protocols"]
        print("\nFidelity protocols (route_*: macro-F1; intents_*: accuracy; memory_xling: top-1 retrieval; "
              f"*_xling: trained or stored in English, used in the other language); ratios to {p['reference']}\n")
        print(tables.format_protocol_means(p))
        for name in p.get("ratios", {}):
            print(f"\n{name} / {p['reference']}, per language\n")
            print(tables.format_protocol_ratios(p, name))
        if p["memory_differences"]["differences"]:
            print(f"\nmemory_xling against {p['memory_differences']['to']}: is the difference larger than the "
                  "retrieval set can tell? (paired bootstrap over its facts)\n")
            print(tables.format_memory_differences(p))
    if ns.json:
        print(json.dumps(result, ensure_ascii=False))
    return 0
