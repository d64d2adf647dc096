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
