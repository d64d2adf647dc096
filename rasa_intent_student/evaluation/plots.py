"""PNG charts of an IntentReport (matplotlib, Agg backend: no display needed)."""
from pathlib import Path
from typing import List, Union

from rasa_intent_student.evaluation.intent import IntentReport

LANGUAGE_PLOT = "per_language_macro_f1.png"
CONFUSION_PLOT = "confusion_matrix.png"


def _pyplot():
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError('--plots needs matplotlib: pip install "rasa-intent-student[eval]"') from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_report(report: IntentReport, directory: Union[str, Path]) -> List[Path]:
    """Write the per-language macro-F1 bars and the confusion matrix; return the PNG paths."""
    plt = _pyplot()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    langs = sorted(report.per_language, key=lambda lang: report.per_language[lang]["macro_f1"])
    scores = [report.per_language[lang]["macro_f1"] for lang in langs]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(langs) + 2), 4))
    bars = ax.bar(langs, scores, color="#4C72B0")
    ax.axhline(report.macro_f1, color="#C44E52", linestyle="--", label=f"overall {report.macro_f1:.3f}")
    ax.bar_label(bars, labels=[f"{s:.2f}" for s in scores], fontsize=7, padding=2)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("macro-F1")
    ax.set_title(f"Macro-F1 per language (n={report.n})")
    ax.legend(loc="lower right")
    fig.tight_layout()
    language_path = directory / LANGUAGE_PLOT
    fig.savefig(language_path, dpi=120)
    plt.close(fig)

    k = len(report.labels)
    fig, ax = plt.subplots(figsize=(1.3 * k + 2, 1.3 * k + 1.5))
    image = ax.imshow(report.confusion, cmap="Blues")
    peak = max(max(row) for row in report.confusion) or 1
    for i, row in enumerate(report.confusion):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center", color="white" if count > peak / 2 else "black")
    ax.set_xticks(range(k), report.labels)
    ax.set_yticks(range(k), report.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix (accuracy {report.accuracy:.3f})")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    confusion_path = directory / CONFUSION_PLOT
    fig.savefig(confusion_path, dpi=120)
    plt.close(fig)
    return [language_path, confusion_path]
