"""IntentEvaluator: accuracy, macro-F1, per-language and per-class scores of a router."""
import dataclasses
import logging
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from rasa_intent_student.evaluation.metrics import (
    accuracy,
    confusion_matrix,
    group_indices,
    label_set,
    macro_f1,
    per_class_scores,
)
from rasa_intent_student.routes import RouteExample
from rasa_intent_student.errors import StudentError

logger = logging.getLogger(__name__)

Predictor = Callable[[List[str]], List[str]]


@dataclasses.dataclass
class IntentReport:
    """Scores of one run of a router over labelled examples.

    Attributes:
        n, accuracy, macro_f1: overall.
        labels: row/column order of ``confusion`` (training labels first, sorted).
        per_language: lang -> {"n", "accuracy", "macro_f1"}.
        per_class: label -> {"precision", "recall", "f1", "support"}.
        confusion: k x k counts, row = true label, column = predicted label.
        worst_language: the language with the lowest macro-F1.
    """

    n: int
    accuracy: float
    macro_f1: float
    labels: List[str]
    per_language: Dict[str, Dict[str, Any]]
    per_class: Dict[str, Dict[str, Any]]
    confusion: List[List[int]]
    worst_language: str
    meta: Dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def build_report(
    examples: Sequence[RouteExample], predictions: Sequence[str], labels: Optional[Sequence[str]] = None
) -> IntentReport:
    """Score ``predictions`` (one label per example) against the examples' labels.

    ``labels`` fixes the class set for overall macro-F1 and the confusion matrix
    (default: every true or predicted label); per language, macro-F1 is over the
    labels that occur in that language's truth or predictions.
    """
    y_true = [e.label for e in examples]
    y_pred = list(predictions)
    labels = list(labels) if labels is not None else label_set(y_true, y_pred)
    per_language: Dict[str, Dict[str, Any]] = {}
    for lang, idx in group_indices([e.lang for e in examples]).items():
        t, p = [y_true[i] for i in idx], [y_pred[i] for i in idx]
        per_language[lang] = {"n": len(idx), "accuracy": accuracy(t, p), "macro_f1": macro_f1(t, p)}
    per_class = {label: s._asdict() for label, s in per_class_scores(y_true, y_pred, labels).items()}
    worst = min(per_language, key=lambda lang: (per_language[lang]["macro_f1"], lang))
    return IntentReport(
        n=len(y_true),
        accuracy=accuracy(y_true, y_pred),
        macro_f1=macro_f1(y_true, y_pred, labels),
        labels=labels,
        per_language=per_language,
        per_class=per_class,
        confusion=confusion_matrix(y_true, y_pred, labels).tolist(),
        worst_language=worst,
    )


class IntentEvaluator:
    """Scores a predictor (texts -> labels) on fixed labelled examples, sentence-transformers style.

    Example:
        >>> evaluator = IntentEvaluator(dev_examples, name="dev")
        >>> evaluator(router_predict)["dev_macro_f1"]
    """

    primary_metric = "macro_f1"

    def __init__(self, examples: Sequence[RouteExample], name: str = "", labels: Optional[Sequence[str]] = None) -> None:
        if not examples:
            raise StudentError("IntentEvaluator needs at least one example.")
        self.examples = list(examples)
        self.name = name
        self.labels = list(labels) if labels is not None else None
        if name:
            self.primary_metric = f"{name}_{IntentEvaluator.primary_metric}"

    def report(self, predict: Predictor) -> IntentReport:
        predictions = predict([e.text for e in self.examples])
        if len(predictions) != len(self.examples):
            raise StudentError(f"The predictor returned {len(predictions)} labels for {len(self.examples)} texts.")
        return build_report(self.examples, predictions, self.labels)

    def __call__(self, predict: Predictor) -> Dict[str, float]:
        """Returns {accuracy, macro_f1, macro_f1_<lang>...}, keys prefixed with ``name_`` when a name is set."""
        report = self.report(predict)
        metrics = {"accuracy": report.accuracy, "macro_f1": report.macro_f1}
        metrics.update({f"macro_f1_{lang}": s["macro_f1"] for lang, s in report.per_language.items()})
        prefix = f"{self.name}_" if self.name else ""
        return {prefix + key: float(value) for key, value in metrics.items()}


def evaluate_router(
    train: Sequence[RouteExample],
    test: Sequence[RouteExample],
    model_dir: Optional[Union[str, Path]] = None,
    threads: Optional[int] = None,
) -> IntentReport:
    """Fit student embeddings + logistic regression on ``train`` and score it on ``test``.

    Raises:
        ValueError: ``test`` has labels absent from ``train`` (the message lists the training labels).
    """
    from rasa_intent_student.encoder import StudentEncoder
    from rasa_intent_student.evaluation.data import check_known_labels
    from rasa_intent_student.evaluation.router import LogisticRouter

    if not train:
        raise StudentError("No training examples; pass --train with at least two labels.")
    train_labels = sorted({e.label for e in train})
    check_known_labels(test, train_labels)
    encoder = StudentEncoder.load(model_dir, threads=threads)
    logger.info("Encoding %d training and %d test texts with %r", len(train), len(test), encoder)
    router = LogisticRouter().fit(encoder.encode([e.text for e in train]), [e.label for e in train])
    evaluator = IntentEvaluator(test, labels=router.labels)
    report = evaluator.report(lambda texts: router.predict(encoder.encode(texts)))
    report.meta = {"model": str(encoder.model_dir), "train_n": len(train), "quantization": encoder.manifest.quantization}
    return report
