"""Describe a student built from a distilled checkpoint: fix ``student.json`` and extend the model card.

``build --teacher OUTPUT/student-st --layers 0 1`` sees the distilled 2-layer
model as its "teacher"; this module puts the real teacher and kept layers back
into ``student.json`` and adds the distillation run and the before/after
encoder-quality figures to ``README.md``.
"""
import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from rasa_intent_student.constants import E5_OFFLINE_TEACHER, LANGUAGES, MODEL_CARD_FILE
from rasa_intent_student.manifest import StudentManifest

NO_DISTILLATION = "No distillation: the kept weights are the teacher's own."
DISTILLED = "The kept layers were then distilled towards the teacher's sentence embeddings (see Distillation)."


def quality_lines(quality: Mapping[str, Mapping[str, float]], reference: str) -> List[str]:
    """Markdown table: one row per language, one column per model, plus each model's ratio to ``reference``.

    Args:
        quality: model name -> {lang: few-shot accuracy}.
        reference: the model the ratios are taken against (the teacher).
    """
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
        cells = [f"{row[n]:.3f}" for n in names] + [f"{row[n] / row[reference]:.1%}" for n in others]
        lines.append(f"| {'**mean**' if lang == 'mean' else lang} | " + " | ".join(cells) + " |")
    return lines


def load_bench_quality(path: Path) -> Dict[str, Dict[str, float]]:
    """model name -> {lang: accuracy} from ``rasa-intent-student bench --json`` output (its last JSON line)."""
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    if not lines:
        raise ValueError(f"{path} holds no JSON line; write it with `rasa-intent-student bench --json ... > {path}`.")
    models = json.loads(lines[-1]).get("quality", {}).get("models", [])
    if not models:
        raise ValueError(f"{path} has no quality results; run bench without --skip-quality.")
    return {m["name"]: {lang: v["accuracy"] for lang, v in m["per_language"].items()} for m in models}


def describe_distilled(
    student_dir: Path,
    run_dir: Path,
    command: str,
    quality: Optional[Mapping[str, Mapping[str, float]]] = None,
    reference: str = "teacher-fp32",
    quality_command: str = "",
) -> Dict[str, Any]:
    """Rewrite ``student.json`` (teacher, layers, distillation metrics) and ``README.md`` of a built student.

    Args:
        student_dir: the directory ``build`` wrote from ``{run_dir}/student-st``.
        run_dir: the distillation run (``distill.json``, ``corpus_manifest.json``).
        command: the commands that rebuild the student, for the card.
        quality: model name -> {lang: few-shot accuracy} (optional).
        reference: the name in ``quality`` that ratios are taken against.
        quality_command: the command that measured ``quality``.

    Returns:
        the ``distillation`` metrics written to student.json.
    """
    from rasa_intent_student.factory.e5_offline import E5_WEIGHTS_NOTE
    from rasa_intent_student.factory.card import render_card
    from rasa_intent_student.factory.distill import CORPUS_MANIFEST_FILE, RESULT_FILE

    run = json.loads((Path(run_dir) / RESULT_FILE).read_text(encoding="utf-8"))
    corpus = json.loads((Path(run_dir) / CORPUS_MANIFEST_FILE).read_text(encoding="utf-8"))
    config = run["config"]
    manifest = StudentManifest.load(student_dir)
    distillation = {
        "teacher": run["teacher"],
        "steps": run["step"],
        "seconds": run["seconds"],
        "steps_per_s": run["steps_per_s"],
        "config": {k: config[k] for k in ("layers", "batch_size", "max_steps", "lr", "mse_weight", "pair_weight", "matryoshka_dims", "max_seq_length")},
        "held_out_cosine": [run["eval_start"]["cosine"], run["eval"]["cosine"]],
        "held_out_mse": [run["eval_start"]["mse"], run["eval"]["mse"]],
        "held_out_pair": [run["eval_start"]["pair"], run["eval"]["pair"]],
        "corpus": {"texts": corpus["texts"], "by_source": corpus["by_source"], "sha256": corpus["sha256"]},
    }
    metrics = {**manifest.metrics, "distillation": distillation, "build_source": "distilled FP32 student (full vocabulary)"}
    # The build saw the 2-layer distilled model as its teacher; the card's teacher is the real one.
    metrics.update({k: run[k] for k in ("teacher_layers", "teacher_parameters") if k in run})
    metrics["teacher_weights"] = f"{E5_WEIGHTS_NOTE if config['teacher'] == E5_OFFLINE_TEACHER else config['teacher']}; distilled on CPU"
    if quality:
        metrics["quality"] = {name: dict(per_lang) for name, per_lang in quality.items()}
    manifest = manifest.replace(teacher=run["teacher"], layers_kept=tuple(config["layers"]), metrics=metrics)
    manifest.save(student_dir)
    card = render_card(manifest, command).replace(NO_DISTILLATION, DISTILLED)
    card = card.replace("# rasa-intent-student default student", "# rasa-intent-student default student (distilled)")
    card += "\n".join(distillation_lines(distillation, corpus["counts"], quality, reference, quality_command)) + "\n"
    (Path(student_dir) / MODEL_CARD_FILE).write_text(card, encoding="utf-8")
    return distillation


def distillation_lines(
    d: Mapping[str, Any],
    counts: Mapping[str, Mapping[str, int]],
    quality: Optional[Mapping[str, Mapping[str, float]]],
    reference: str,
    quality_command: str,
) -> List[str]:
    c = d["config"]
    sources: Sequence[str] = sorted({s for by in counts.values() for s in by})
    lines = [
        "## Distillation",
        "",
        f"Layers {list(c['layers'])} of the teacher, trained for {d['steps']} steps of {c['batch_size']} texts "
        f"({d['seconds'] / 60:.1f} min, {d['steps_per_s']:.2f} steps/s, CPU) with AdamW (lr {c['lr']}), "
        f"loss = {c['mse_weight']} x MSE of L2-normalized sentence embeddings + {c['pair_weight']} x MSE of in-batch "
        f"cosine-similarity matrices{', Matryoshka dims ' + str(c['matryoshka_dims']) if c['matryoshka_dims'] else ''}. "
        "Word embeddings frozen (the vocabulary is pruned afterwards); the two layers, position/type embeddings "
        "and LayerNorms trained.",
        "",
        f"Held-out corpus texts (FP32 student before pruning/quantization vs teacher): cosine "
        f"{d['held_out_cosine'][0]:.4f} -> {d['held_out_cosine'][1]:.4f}, MSE (2 - 2 cos) "
        f"{d['held_out_mse'][0]:.4f} -> {d['held_out_mse'][1]:.4f}; pairwise-cosine loss (what was trained) "
        f"{d['held_out_pair'][0]:.5f} -> {d['held_out_pair'][1]:.5f}.",
        "",
        f"Corpus: {d['corpus']['texts']:,} texts (sha256 {d['corpus']['sha256'][:12]}); the route dev split and "
        "home-assistant-intents are never used.",
        "",
        "| language | " + " | ".join(sources) + " |",
        "|---|" + "---|" * len(sources),
    ]
    for lang, by in counts.items():
        lines.append(f"| {lang} | " + " | ".join(str(by.get(s, 0)) for s in sources) + " |")
    if quality:
        lines += [
            "",
            "## Encoder quality: before and after distillation",
            "",
            "Few-shot intent accuracy (logistic regression on frozen embeddings, MassiveIntent style) on "
            "Home Assistant intent sentences expanded with hassil; mean over seeds.",
            "",
        ]
        lines += quality_lines(quality, reference)
        if quality_command:
            lines += ["", "```", quality_command, "```"]
    return lines + [""]
