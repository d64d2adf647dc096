"""Plain-text tables for the CLI (Markdown pipe tables, so they paste into a README)."""
from typing import Any, List, Sequence

from rasa_intent_student.evaluation.intent import IntentReport


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown pipe table with columns padded to equal width."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    return "\n".join(lines)


def format_intent_report(report: IntentReport) -> str:
    """Overall scores, then per language, per class and the confusion matrix."""
    parts: List[str] = [
        format_table(["n", "accuracy", "macro-F1", "worst language"],
                     [[report.n, report.accuracy, report.macro_f1,
                       f"{report.worst_language} ({report.per_language[report.worst_language]['macro_f1']:.3f})"]]),
        format_table(["language", "n", "accuracy", "macro-F1"],
                     [[lang, s["n"], s["accuracy"], s["macro_f1"]] for lang, s in report.per_language.items()]),
        format_table(["class", "precision", "recall", "F1", "support"],
                     [[label, s["precision"], s["recall"], s["f1"], s["support"]] for label, s in report.per_class.items()]),
        format_table(["true \\ predicted", *report.labels],
                     [[label, *row] for label, row in zip(report.labels, report.confusion)]),
    ]
    return "\n\n".join(parts)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def format_speed(rows: List[dict]) -> str:
    """Encoder speed table; ratios are relative to the first model. A peer has no transformer layers: n/a."""
    base = rows[0]
    return format_table(
        ["model", "layers", "quant", "model MB", "p50 ms", "p90 ms", "p99 ms", f"p50 / {base['name']}",
         "sent/s (batch)", "peak RSS MiB"],
        [[r["name"], "n/a" if r["layers"] is None else r["layers"], r["quantization"], f"{r['model_mb']:.1f}", f"{r['latency_ms']['p50']:.2f}",
          f"{r['latency_ms']['p90']:.2f}", f"{r['latency_ms']['p99']:.2f}",
          _ratio(r["latency_ms"]["p50"], base["latency_ms"]["p50"]), f"{r['throughput']:.0f}", f"{r['peak_rss_mb']:.0f}"]
         for r in rows],
    )


def format_rasa(rows: List[dict]) -> str:
    """Rasa train + parse table and the DIET / student ratios."""
    table = format_table(
        ["pipeline", "train rows", "train s", "parse p50 ms", "parse p90 ms", "parse p99 ms", "accuracy", "macro-F1",
         "model .tar.gz MB", "peak RSS MiB (train+parse)"],
        [[r["pipeline"], r["train_n"], f"{r['train_s']:.1f}", f"{r['parse_ms']['p50']:.2f}", f"{r['parse_ms']['p90']:.2f}",
          f"{r['parse_ms']['p99']:.2f}", r["accuracy"], r["macro_f1"], f"{r['model_mb']:.1f}", f"{r['peak_rss_mb']:.0f}"]
         for r in rows],
    )
    by_name = {r["pipeline"]: r for r in rows}
    if {"student", "diet"} <= set(by_name):
        s, d = by_name["student"], by_name["diet"]
        table += (
            f"\n\ndiet / student: training time {_ratio(d['train_s'], s['train_s'])}, "
            f"parse p50 {_ratio(d['parse_ms']['p50'], s['parse_ms']['p50'])}, "
            f"parse p99 {_ratio(d['parse_ms']['p99'], s['parse_ms']['p99'])}"
        )
    return table


def format_quality(quality: dict) -> str:
    """Few-shot accuracy per language (rows) and model (columns), mean ± std over seeds."""
    models = quality["models"]
    langs = list(models[0]["per_language"]) if models else []
    rows = []
    for lang in langs:
        first = models[0]["per_language"][lang]
        rows.append([lang, first["intents"], first["n"],
                     *(f"{m['per_language'][lang]['accuracy']:.3f} ± {m['per_language'][lang]['std']:.3f}" for m in models)])
    rows.append(["mean", "", "", *(f"{m['mean_accuracy']:.3f}" for m in models)])
    return format_table(["language", "intents", "sentences", *(m["name"] for m in models)], rows)


def format_fidelity(fidelity: dict) -> str:
    return format_table(["model", "cosine to teacher", "min cosine", "MSE"],
                        [[name, s["cosine"], s["min_cosine"], f"{s['mse']:.2e}"] for name, s in fidelity.items()])


def format_protocol_means(protocols: dict) -> str:
    """Mean score per protocol (rows) and model (columns), with each model's ratio to the reference."""
    scores, ratios = protocols["scores"], protocols.get("ratios", {})
    names = list(scores)
    rows = []
    for protocol in protocols["protocols"]:
        means = [sum(scores[n][protocol].values()) / max(len(scores[n][protocol]), 1) for n in names]
        cells = []
        for name, mean in zip(names, means):
            ratio = ratios.get(name, {}).get(protocol, {}).get("mean")
            cells.append(f"{mean:.3f}" + (f" ({ratio:.2f}x)" if ratio is not None else ""))
        rows.append([protocol, *cells])
    return format_table(["protocol (mean over languages)", *names], rows)


def format_protocol_ratios(protocols: dict, model: str) -> str:
    """``model`` / reference per language (rows) and protocol (columns); the worst ratio of each row last."""
    ratios = protocols["ratios"][model]
    names = protocols["protocols"]
    langs = [lang for lang in protocols["scores"][model][names[0]]]
    for protocol in names:
        langs += [lang for lang in protocols["scores"][model][protocol] if lang not in langs]
    rows = []
    for lang in langs:
        cells = [ratios[p].get(lang) for p in names]
        present = [c for c in cells if c is not None]
        rows.append([lang, *("" if c is None else f"{c:.3f}" for c in cells), f"{min(present):.3f}" if present else ""])
    rows.append(["mean", *(f"{ratios[p]['mean']:.3f}" if "mean" in ratios[p] else "" for p in names), ""])
    return format_table(["language", *names, "worst"], rows)


def format_memory_differences(protocols: dict) -> str:
    """Each model's memory_xling mean minus the first model's, with the 95% bootstrap interval over the facts."""
    diffs = protocols["memory_differences"]
    rows = [[name, f"{d['mean']:+.3f}", f"{d['low']:+.3f} to {d['high']:+.3f}", "yes" if d["low"] > 0 or d["high"] < 0 else "no"]
            for name, d in diffs["differences"].items()]
    return format_table([f"memory_xling minus {diffs['to']}", "difference", f"95% interval ({diffs['facts']} facts)",
                         "apart (0 outside the interval)"], rows)
