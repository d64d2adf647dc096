"""What the build measures about its graphs: node counts, INT8 modes compared, latency, summary rows."""
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Sequence, Tuple

import numpy as np

from rasa_intent_student.constants import ATTENTION_MASK
from rasa_intent_student.factory.quantize import QUANT_MODES, single_run_latency

if TYPE_CHECKING:
    from rasa_intent_student.factory.build import BuildConfig

QUANT_DIR = "quantization"


def node_count(path: Path) -> int:
    """Nodes of an ONNX file's main graph."""
    from rasa_intent_student.factory.export import graph_ops

    return sum(graph_ops(path).values())


def record_int8_graph(graph: Dict[str, Any], int8_path: Path, mode: str) -> None:
    """Add the shipped INT8 graph's node count, fused ops and quantization settings to ``graph``."""
    from rasa_intent_student.factory.export import FUSED_OP_TYPES, graph_ops

    int8_ops = graph_ops(int8_path)
    graph["nodes"]["int8"] = sum(int8_ops.values())
    graph["int8_fused_ops"] = {k: v for k, v in sorted(int8_ops.items()) if k in FUSED_OP_TYPES}
    signed, per_channel, seven_bit = QUANT_MODES[mode]
    graph["quantization"] = {
        "mode": mode,
        "weights": ("int8" if signed else "uint8") + (" (7-bit range)" if seven_bit else ""),
        "scales": "per channel" if per_channel else "per tensor",
        "activations": "uint8, quantized per tensor at run time",
    }


def latency_texts(config: "BuildConfig", runs: int, fallback: Sequence[str]) -> List[str]:
    """``runs`` route dev texts spread over the languages (cycled if fewer); ``fallback`` without dev data."""
    from rasa_intent_student.factory.vocab import route_texts

    pool: List[str] = []
    for lang in config.languages:
        pool += route_texts(config.route_dir, "dev", lang) if config.route_dir else []
    pool = pool or list(fallback)
    if runs <= 0 or not pool:
        return []
    step = max(len(pool) // runs, 1)
    picked = pool[::step][:runs]
    return (picked * (runs // len(picked) + 1))[:runs]


def compare_graphs(
    config: "BuildConfig",
    graph_path: Path,
    fp32_path: Path,
    int8_path: Path,
    int8_fid: Dict[str, float],
    feeds: Dict[str, np.ndarray],
    fp32_out: Dict[str, np.ndarray],
    tokenizer_path: Path,
    prefix: str,
    texts: Sequence[str],
    work: Path,
) -> Dict[str, Any]:
    """Quality and single-utterance latency of the shipped INT8 graph and of its alternatives.

    Alternatives (with ``compare_quantization``): the fused graph in each other INT8 mode, the unfused
    export in the shipped mode, and the FP32 graph. Cosines are to the FP32 graph each was quantized
    from, on the verification texts; latencies are p50 of ``session.run`` on 1 thread, one route dev
    text per run, graphs taking turns.
    """
    import onnxruntime

    from rasa_intent_student.factory.export import make_single_feeds, onnx_forward
    from rasa_intent_student.factory.quantize import mean_cosine, quantize_int8

    def row(path: Path, fid: Dict[str, float]) -> Dict[str, Any]:
        return {
            "nodes": node_count(path),
            "bytes": path.stat().st_size,
            "cosine_mean": round(fid["sentence_cosine_mean"], 5),
            "cosine_min": round(fid["sentence_cosine_min"], 5),
            "centered_cosine_mean": round(fid["centered_cosine_mean"], 5),
            "token_cosine_mean": round(fid["token_cosine_mean"], 5),
        }

    fused_tag = "fused" if config.fuse else "unfused"
    shipped = f"{fused_tag} int8 {config.quantization}"
    rows = {shipped: row(int8_path, int8_fid)}
    paths = {shipped: int8_path}
    if config.compare_quantization:
        scratch = work / QUANT_DIR
        if scratch.exists():
            shutil.rmtree(scratch)
        for mode in QUANT_MODES:
            if mode != config.quantization:
                path = quantize_int8(graph_path, scratch / f"{fused_tag}-{mode}.onnx", mode)
                rows[f"{fused_tag} int8 {mode}"] = row(path, mean_cosine(fp32_out, onnx_forward(path, feeds), feeds[ATTENTION_MASK]))
                paths[f"{fused_tag} int8 {mode}"] = path
        if config.fuse:  # the unfused export, as shipped before fusion
            path = quantize_int8(fp32_path, scratch / f"unfused-{config.quantization}.onnx", config.quantization)
            ref = onnx_forward(fp32_path, feeds)
            name = f"unfused int8 {config.quantization}"
            rows[name] = row(path, mean_cosine(ref, onnx_forward(path, feeds), feeds[ATTENTION_MASK]))
            paths[name] = path
        rows[f"{fused_tag} fp32"] = {"nodes": node_count(graph_path), "bytes": graph_path.stat().st_size}
        paths[f"{fused_tag} fp32"] = graph_path
    result: Dict[str, Any] = {"shipped": shipped, "candidates": rows}
    timed = latency_texts(config, config.latency_runs, texts)
    if timed:
        single = make_single_feeds(tokenizer_path, timed, prefix, config.max_seq_length)
        for name, figures in single_run_latency(paths, single).items():
            rows[name].update(figures)
        result["latency"] = {
            "runs": len(single),
            "threads": 1,
            "texts": "route dev texts" if config.route_dir else "verification texts",
            "median_tokens": int(np.median([f[ATTENTION_MASK].shape[1] for f in single])),
            "onnxruntime": onnxruntime.__version__,
        }
    return result


def graph_summary(graph: Dict[str, Any]) -> str:
    """One line: fused or not, quantization mode, node counts export -> fused -> INT8."""
    nodes = graph.get("nodes", {})
    steps = [str(nodes[k]) for k in ("export_fp32", "fused_fp32", "int8") if k in nodes]
    fused = "fused" if graph.get("fused") else "not fused"
    return f"{fused}, {graph.get('quantization', {}).get('mode', '?')}, nodes " + " -> ".join(steps)


def latency_rows(graph: Dict[str, Any]) -> List[Tuple[str, str]]:
    """One row per timed graph: p50 of single-utterance session.run and cosine to FP32."""
    rows = []
    for name, row in graph.get("candidates", {}).items():
        if "p50_ms" in row:
            cos = f", cosine {row['cosine_mean']:.4f} (centred {row['centered_cosine_mean']:.4f})" if "cosine_mean" in row else ""
            mark = " (shipped)" if name == graph.get("shipped") else ""
            rows.append((f"p50 1 thread: {name}", f"{row['p50_ms']:.3f} ms{cos}{mark}"))
    return rows
