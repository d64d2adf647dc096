"""`evaluate --plots`: per-language bars on a fixed 0-1 axis, worst first, labelled; a confusion matrix that scales."""
import pytest

from rasa_intent_student.evaluation.intent import build_report
from rasa_intent_student.routes import RouteExample

pytest.importorskip("matplotlib")
from rasa_intent_student.evaluation.plots import confusion_figure, language_figure, plot_report  # noqa: E402


def report(labels=("action", "other", "recall")):
    # es: 2 of 3 right, en: 3 of 3, ko: 1 of 3.
    rows = [("es", "action", "action"), ("es", "other", "other"), ("es", "recall", "other"),
            ("en", "action", "action"), ("en", "other", "other"), ("en", "recall", "recall"),
            ("ko", "action", "recall"), ("ko", "other", "other"), ("ko", "recall", "action")]
    examples = [RouteExample(f"t{i}", true, lang) for i, (lang, true, _) in enumerate(rows)]
    return build_report(examples, [pred for *_, pred in rows], list(labels))


def test_language_bars_worst_first_on_a_0_1_axis_with_values_and_counts():
    figure = language_figure(report())
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ko\n3", "es\n3", "en\n3"]
    assert ax.get_ylim() == (0, 1.1) and list(ax.get_yticks()) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    heights = [round(bar.get_height(), 3) for bar in ax.patches]
    assert heights == sorted(heights) and heights[-1] == 1.0
    assert [t.get_text() for t in ax.texts] == [f"{h:.2f}" for h in heights]
    assert ax.get_legend().get_texts()[0].get_text().startswith("all languages ")


def test_confusion_matrix_slants_long_names_and_caps_its_size():
    names = [f"intent_with_a_long_name_{i}" for i in range(40)]
    figure = confusion_figure(report(names[:1] + ["other", "recall", "action"] + names[1:]))
    ax = figure.axes[0]
    assert max(figure.get_size_inches()) == 16.0
    assert ax.get_xticklabels()[0].get_rotation() == 45


def test_plot_report_writes_both_pngs(tmp_path):
    paths = plot_report(report(), tmp_path)
    assert [p.name for p in paths] == ["per_language_macro_f1.png", "confusion_matrix.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)
