"""PNG charts of an IntentReport (matplotlib, Agg backend: no display needed)."""
from pathlib import Path
from typing import List, Union

from rasa_intent_student.errors import install_hint
from rasa_intent_student.evaluation.intent import IntentReport

LANGUAGE_PLOT = "per_language_macro_f1.png"
CONFUSION_PLOT = "confusion_matrix.png"


def _pyplot():
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError(f"--plots needs matplotlib: {install_hint('eval')}") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_report(report: IntentReport, directory: Union[str, Path]) -> List[Path]:
    """Write the per-language macro-F1 bars and the confusion matrix; return the PNG paths."""
    plt = _pyplot()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for figure, name in ((language_figure(report), LANGUAGE_PLOT), (confusion_figure(report), CONFUSION_PLOT)):
        figure.tight_layout()
        figure.savefig(directory / name, dpi=120)
        plt.close(figure)
        paths.append(directory / name)
    return paths


def language_figure(report: IntentReport):
    """Bars of macro-F1 per language, worst first, on a fixed 0-1 axis; each tick is the code and its test rows."""
    plt = _pyplot()
    langs = sorted(report.per_language, key=lambda lang: (report.per_language[lang]["macro_f1"], lang))
    scores = [report.per_language[lang]["macro_f1"] for lang in langs]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(langs) + 2), 4.2))
    bars = ax.bar(range(len(langs)), scores, color="#4C72B0", zorder=2)
    ax.set_xticks(range(len(langs)), [f"{lang}\n{report.per_language[lang]['n']}" for lang in langs], fontsize=9)
    ax.axhline(report.macro_f1, color="#C44E52", linestyle="--", linewidth=1, zorder=1,
               label=f"all languages {report.macro_f1:.3f}")
    ax.bar_label(bars, labels=[f"{s:.2f}" for s in scores], fontsize=8, padding=2)
    pad = max(6 - len(langs), 0) / 2  # one or two languages get bars of the usual width, centred
    ax.set_xlim(-0.6 - pad, len(langs) - 0.4 + pad)
    ax.set_ylim(0, 1.1)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.grid(axis="y", color="#DDDDDD", zorder=0)
    ax.set_ylabel("macro-F1")
    ax.set_xlabel("language (test rows)")
    ax.set_title(f"Macro-F1 per language, worst first (n={report.n})")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def confusion_figure(report: IntentReport):
    """Counts, row = true label, column = predicted; the size is capped and long names are slanted."""
    plt = _pyplot()
    k = len(report.labels)
    side = min(1.3 * k + 2, 16.0)  # a bot with 40 intents still gets a figure a viewer can open
    fig, ax = plt.subplots(figsize=(side, side - 0.5))
    image = ax.imshow(report.confusion, cmap="Blues")
    peak = max(max(row) for row in report.confusion) or 1
    for i, row in enumerate(report.confusion):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8 if k > 10 else 10,
                    color="white" if count > peak / 2 else "black")
    slant = k > 4 or max(map(len, report.labels)) > 8
    ax.set_xticks(range(k), report.labels, rotation=45 if slant else 0, ha="right" if slant else "center")
    ax.set_yticks(range(k), report.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix (accuracy {report.accuracy:.3f})")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return fig
