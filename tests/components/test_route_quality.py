"""Accuracy and calibration of StudentFeaturizer + RouteClassifier on the shipped dev split.

Run: .venv/bin/python -m pytest tests/components/test_route_quality.py -m slow -s
"""
import numpy as np
import pytest
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from rasa_intent_student.evaluation.metrics import expected_calibration_error
from rasa_intent_student.components.classifier import RouteClassifier
from rasa_intent_student.constants import ROUTES
from rasa_intent_student.routes import available_languages, load_routes

# Floors for the shipped default student, by training languages (None: all 18); a regression fails the build.
# English-only training measures cross-lingual transfer: its folds cannot calibrate other languages.
FLOORS = {None: {"accuracy": 0.75, "ece": 0.05}, "en": {"accuracy": 0.5, "ece": 1.0}}


@pytest.mark.slow
@pytest.mark.parametrize("train_languages", [None, "en"], ids=["train-all", "train-en"])
def test_dev_accuracy_and_calibration(featurizer, model_storage, execution_context, train_languages):
    rows = load_routes("train", train_languages)
    train = TrainingData([Message.build(text=r.text, intent=r.label) for r in rows])
    featurizer.process_training_data(train)
    config = RouteClassifier.get_default_config()
    classifier = RouteClassifier.create(config, model_storage, Resource("classifier"), execution_context)
    classifier.train(train)

    dev = load_routes("dev", available_languages("dev"))
    messages = featurizer.process([Message.build(text=r.text) for r in dev])
    classifier.process(messages)
    labels = list(ROUTES)
    probs = np.array([[{r["name"]: r["confidence"] for r in m.get("intent_ranking")}[l] for l in labels] for m in messages])
    y = np.array([labels.index(r.label) for r in dev])
    accuracy = float((probs.argmax(axis=1) == y).mean())
    ece = expected_calibration_error(probs, y)
    langs = sorted({r.lang for r in dev})
    print(f"\ntrain: {len(rows)} utterances ({train_languages or 'all languages'}); dev: {len(dev)} utterances, {len(langs)} languages {langs}; accuracy {accuracy:.3f}, "
          f"ECE(15 bins) {ece:.3f}, temperature {classifier.model.temperature:.2f}, C {config['C']}")
    assert accuracy >= FLOORS[train_languages]["accuracy"]
    assert ece <= FLOORS[train_languages]["ece"]
