"""The model card's distillation and results sections, rendered from the manifest's metrics.

``build`` copies the distillation record (``student-st/distill.json``) into ``metrics["distillation"]``;
``distill --describe`` adds the benchmark results of the built student (``bench --json``) as
``metrics["quality"]`` and ``metrics["protocols"]`` and renders the card again. Nothing patches card text.
"""
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from rasa_intent_student.constants import LANGUAGES
from rasa_intent_student.manifest import StudentManifest


def describe_results(student_dir: Path, quality: Optional[Mapping[str, Mapping[str, float]]], protocols: Optional[Mapping[str, Any]],
                     reference: str = "teacher-fp32", command: str = "") -> StudentManifest:
    """Store benchmark results of a built student in its ``student.json`` and render its card again."""
    from rasa_intent_student.factory.card import write_card
    from rasa_intent_student.manifest import seal_student

    manifest = StudentManifest.load(student_dir)
    metrics = dict(manifest.metrics)
    if quality:
        metrics["quality"] = {"reference": reference, "models": {n: dict(v) for n, v in quality.items()}, "command": command}
    if protocols:
        metrics["protocols"] = {**protocols, "command": command}
    manifest = manifest.replace(metrics=metrics)
    manifest.save(student_dir)
    write_card(student_dir, manifest)
    seal_student(student_dir)
    return manifest


def quality_lines(quality: Mapping[str, Mapping[str, float]], reference: str) -> List[str]:
    """Markdown table: one row per language, one column per model, plus each model's ratio to ``reference``."""
    names = list(quality)
    langs = [lang for lang in LANGUAGES if all(lang in quality[n] for n in names)]
    others = [n for n in names if n != reference]
    header = ["language"] + names + [f"{n} / {reference}" for n in others]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for lang in langs + ["mean"]:
        if lang == "mean":
            row = {n: sum(quality[n][x] for x in langs) / len(langs) for n in names}
        else:
            row = {n: quality[n][lang] for n in names}
        cells = [f"{row[n]:.3f}" for n in names] + [f"{row[n] / row[reference]:.1%}" if row.get(reference) else "" for n in others]
        lines.append(f"| {'**mean**' if lang == 'mean' else lang} | " + " | ".join(cells) + " |")
    return lines


def distillation_lines(d: Mapping[str, Any]) -> List[str]:
    c, corpus = d["config"], d.get("corpus", {})
    start, end = d["eval_start"], d["eval"]
    minutes = f"{d['seconds'] / 60:.1f} min, {d['steps_per_s']:.2f} steps/s, " if d.get("seconds") else ""
    lines = [
        "## Distillation",
        "",
        f"Layers {list(c['layers'])} of the teacher, trained for {d['steps']} steps of {c['batch_size']} texts "
        f"({minutes}device {c.get('device', 'cpu')}) with AdamW (lr {c['lr']}, {c['warmup_steps']} warmup steps, cosine decay). "
        f"Loss = {c['mse_weight']} x MSE of the L2-normalized sentence embeddings (the absolute target) + "
        f"{c['pair_weight']} x MSE of the in-batch cosine-similarity matrices + {c.get('xling_weight', 0)} x MSE between a "
        f"translation's embedding and the teacher's embedding of its English source (sources: {', '.join(c.get('xling_sources', [])) or 'none'})"
        f"{_optional_terms(c)}"
        f"{', Matryoshka dims ' + str(c['matryoshka_dims']) if c.get('matryoshka_dims') else ''}. "
        f"{_embedding_sentence(c)} The two layers, position/type embeddings and LayerNorms trained.",
        "",
        *_first_stage_lines(d.get("first_stage")),
        *_averaged_lines(d.get("averaged_from")),
        "Held-out corpus texts (FP32 student before pruning and quantization vs the teacher):",
        "",
        "| figure | before | after |",
        "|---|---|---|",
        f"| cosine to the teacher | {start['cosine']:.4f} | {end['cosine']:.4f} |",
        f"| MSE (2 - 2 cos) | {start['mse']:.4f} | {end['mse']:.4f} |",
        f"| in-batch pairwise-cosine loss | {start['pair']:.5f} | {end['pair']:.5f} |",
    ]
    if "xling" in start and "xling" in end:
        lines.append(f"| translation vs teacher(English source), 2 - 2 cos | {start['xling']:.4f} | {end['xling']:.4f} |")
    if "xling_top1" in start and "xling_top1" in end:
        lines.append(f"| translations whose nearest held-out source is their own (top-1) | {start['xling_top1']:.3f} | {end['xling_top1']:.3f} |")
    if "token" in start and "token" in end:
        lines.append(f"| token states vs the teacher's, relative squared error | {start['token']:.4f} | {end['token']:.4f} |")
    lines += ["", f"Corpus: {corpus.get('texts', 0):,} texts (sha256 {str(corpus.get('sha256', ''))[:12]}), by source "
              f"{corpus.get('by_source', {})}; translation pairs {corpus.get('parallel_pairs', {})}. The route dev split, "
              "the memory retrieval set and home-assistant-intents are never used.", ""]
    counts = corpus.get("counts") or {}
    sources = sorted({s for by in counts.values() for s in by})
    if counts:
        lines += ["| language | " + " | ".join(sources) + " |", "|---|" + "---|" * len(sources)]
        lines += [f"| {lang} | " + " | ".join(str(by.get(s, 0)) for s in sources) + " |" for lang, by in counts.items()]
        lines.append("")
    return lines


def _first_stage_lines(first: Optional[Mapping[str, Any]]) -> List[str]:
    if not first:
        return []
    c = first["config"]
    return [f"This was a second stage. The first trained the teacher's layers for {first['steps']} steps "
            f"(lr {c['lr']}, loss weights mse {c['mse_weight']}, pair {c['pair_weight']}, translation "
            f"{c.get('xling_weight', 0)}); the figures below compare the second stage's start and end.", ""]


def _averaged_lines(sources: Optional[Sequence[str]]) -> List[str]:
    if not sources:
        return []
    return [f"The weights are the uniform average of {len(sources)} students ({', '.join(sources)}); the settings and "
            "held-out figures here are the first one's.", ""]


def protocol_lines(p: Mapping[str, Any]) -> List[str]:
    from rasa_intent_student.evaluation.tables import format_protocol_means, format_protocol_ratios

    lines = ["## Fidelity to the teacher, per protocol and language", "",
             "route_*: macro-F1 (route_xling: router trained on English rows only, tested on each other language); "
             "intents_fewshot: 8-shot accuracy on Home Assistant intents; intents_xling: trained on English, tested on "
             "the other languages; memory_xling: top-1 retrieval of a stored fact, stored in English and asked in the "
             f"language and the reverse. Ratios are to `{p.get('reference')}`, measured in the same run.", "",
             format_protocol_means(p), ""]
    for name in p.get("ratios", {}):
        lines += [f"`{name}` / `{p.get('reference')}`:", "", format_protocol_ratios(p, name), ""]
    if p.get("command"):
        lines += ["```", p["command"], "```", ""]
    return lines


def results_lines(metrics: Mapping[str, Any]) -> List[str]:
    """The distillation, protocol and few-shot sections that the metrics hold (none for a pruned-only build)."""
    lines: List[str] = []
    if "distillation" in metrics:
        lines += distillation_lines(metrics["distillation"])
    if "protocols" in metrics:
        lines += protocol_lines(metrics["protocols"])
    q = metrics.get("quality")
    if q:
        lines += ["## Few-shot intent accuracy, before and after distillation", "",
                  "Logistic regression on frozen embeddings, 8 examples per intent, Home Assistant intent sentences "
                  "expanded with hassil; mean over seeds.", ""]
        lines += quality_lines(q["models"], q["reference"])
        if q.get("command"):
            lines += ["", "```", q["command"], "```"]
        lines.append("")
    return lines


def _embedding_sentence(c: Dict[str, Any]) -> str:
    """How the word embeddings were treated (frozen, or a trained delta on frequent corpus tokens)."""
    if not c.get("embedding_lr"):
        return "Word embeddings frozen (the vocabulary is pruned afterwards)."
    return (f"Word embeddings: the teacher's, plus a delta trained at {c['embedding_lr']} x the learning rate on the tokens "
            f"seen at least {c.get('embedding_min_count')} times in the corpus, merged into the table before export "
            "(the vocabulary is pruned afterwards).")


def _optional_terms(config: Dict[str, Any]) -> str:
    """The loss sentence's parts for the targets that are off by default (empty for those that were off)."""
    parts = []
    if config.get("neighbourhood_weight"):
        parts.append(f" + {config['neighbourhood_weight']} x KL between the teacher's and the student's softmax over the batch's "
                     f"other texts by cosine / {config.get('neighbourhood_temperature')} (each text's nearest neighbours)")
    if config.get("token_weight"):
        parts.append(f" + {config['token_weight']} x relative squared error between each token's last hidden state and the "
                     "teacher's (a layer-wise target: the student's last layer is the teacher's last)")
    if config.get("middle_weight"):
        parts.append(f" + {config['middle_weight']} x relative squared error between each token's state after the student's "
                     f"first layer and the teacher's after its layer {config.get('middle_layer')} (a middle-layer target)")
    if config.get("relation_weight"):
        parts.append(f" + {config['relation_weight']} x KL between the teacher's and the student's last-layer self-attention "
                     "relations (query-query, key-key, value-value per head, MiniLMv2)")
    if config.get("rank_weight"):
        parts.append(f" + {config['rank_weight']} x in-batch translation ranking (InfoNCE at scale {config.get('rank_scale')}: "
                     "each translation against the teacher's embeddings of the batch's texts, its source the positive)")
    if config.get("route_weight"):
        form = ("cross-entropy of a linear route probe (trained beside the student, then dropped)"
                if config.get("route_loss") == "probe" else "supervised contrastive loss")
        parts.append(f" + {config['route_weight']} x {form} at temperature {config.get('route_temperature')} "
                     f"over {config.get('route_batch_size')} route TRAIN examples a step, drawn evenly across the routes "
                     "(a route-aware student; the route dev split is never trained on)")
    if config.get("memory_weight"):
        parts.append(f" + {config['memory_weight']} x memory ranking (InfoNCE at scale {config.get('rank_scale')} over "
                     f"{config.get('memory_batch_size')} fact-and-question pairs a step: each question, in a language drawn "
                     "at random, must find its own fact, in another, among the batch's facts; none is a benchmark text)")
    if config.get("neighbours"):
        parts.append(f"; each batch draws texts at random, each with its {config['neighbours']} nearest texts of the same "
                     "language by the teacher's embedding")
    return "".join(parts)
