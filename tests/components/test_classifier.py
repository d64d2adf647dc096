import json

import numpy as np
import pytest
from rasa.engine.storage.resource import Resource
from rasa.shared.exceptions import InvalidConfigException, RasaException
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from rasa_intent_student.components.classifier import RouteClassifier
from rasa_intent_student.constants import CLASSIFIER_META_FILE, CLASSIFIER_WEIGHTS_FILE

from .conftest import messages

QUERIES = ["reserve a table for four", "what did I buy yesterday?", "hello!", "¿cuándo es mi cita?", "👍"]


def create(model_storage, execution_context, config=None, resource="classifier") -> RouteClassifier:
    return RouteClassifier.create(
        {**RouteClassifier.get_default_config(), **(config or {})}, model_storage, Resource(resource), execution_context
    )


@pytest.fixture
def featurized(featurizer, training_data) -> TrainingData:
    featurizer.process_training_data(training_data)
    return training_data


def ranking(message: Message):
    return [(r["name"], r["confidence"]) for r in message.get("intent_ranking")]


def test_train_persist_load_same_predictions(featurizer, featurized, model_storage, execution_context):
    classifier = create(model_storage, execution_context)
    resource = classifier.train(featurized)
    with model_storage.read_from(resource) as directory:
        assert sorted(p.name for p in directory.iterdir()) == sorted([CLASSIFIER_META_FILE, CLASSIFIER_WEIGHTS_FILE])
        meta = json.loads((directory / CLASSIFIER_META_FILE).read_text())
    assert meta["labels"] == ["action", "other", "recall"] and meta["temperature"] > 0

    before = featurizer.process(messages(QUERIES))
    classifier.process(before)
    loaded = RouteClassifier.load(RouteClassifier.get_default_config(), model_storage, resource, execution_context)
    after = featurizer.process(messages(QUERIES))
    loaded.process(after)
    for a, b in zip(before, after):
        assert [n for n, _ in ranking(a)] == [n for n, _ in ranking(b)]
        assert np.allclose([c for _, c in ranking(a)], [c for _, c in ranking(b)])
        assert a.get("intent") == a.get("intent_ranking")[0]
        confidences = [c for _, c in ranking(a)]
        assert confidences == sorted(confidences, reverse=True) and np.isclose(sum(confidences), 1.0)


def test_training_examples_are_predicted_back(featurizer, featurized, model_storage, execution_context):
    classifier = create(model_storage, execution_context, {"calibrate": False, "C": 100.0})
    classifier.train(featurized)
    queries = [Message.build(text=m.get(TEXT)) for m in featurized.intent_examples]
    classifier.process(featurizer.process(queries))
    assert [m.get("intent")["name"] for m in queries] == [m.get("intent") for m in featurized.intent_examples]


def test_ranking_length(featurizer, featurized, model_storage, execution_context):
    classifier = create(model_storage, execution_context, {"ranking_length": 2})
    classifier.train(featurized)
    (message,) = classifier.process(featurizer.process(messages(["hello!"])))
    assert len(message.get("intent_ranking")) == 2


def test_message_without_features_gets_no_intent(featurizer, featurized, model_storage, execution_context):
    classifier = create(model_storage, execution_context)
    classifier.train(featurized)
    empty, text = classifier.process(featurizer.process(messages(["", "hello"])))
    assert empty.get("intent") == {"name": None, "confidence": 0.0} and empty.get("intent_ranking") == []
    assert text.get("intent")["name"] in {"action", "recall", "other"}


def test_untrained_load_predicts_nothing(featurizer, model_storage, execution_context):
    loaded = RouteClassifier.load(
        RouteClassifier.get_default_config(), model_storage, Resource("never-trained"), execution_context
    )
    (message,) = loaded.process(featurizer.process(messages(["hello"])))
    assert message.get("intent")["name"] is None


def test_single_intent_bot(featurizer, model_storage, execution_context):
    data = TrainingData([Message.build(text=t, intent="greet") for t in ["hi", "hello", "hey"]])
    featurizer.process_training_data(data)
    classifier = create(model_storage, execution_context)
    classifier.train(data)
    (message,) = classifier.process(featurizer.process(messages(["good morning"])))
    assert message.get("intent") == {"name": "greet", "confidence": 1.0}


def test_missing_features_raise(model_storage, execution_context, training_data):
    with pytest.raises(RasaException, match="no dense sentence features.*StudentFeaturizer"):
        create(model_storage, execution_context).train(training_data)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"C": 0}, r"C=0 is invalid; use a positive number"),
        ({"C": "big"}, r"C='big' is invalid"),
        ({"max_iter": 0}, r"max_iter=0 is invalid; use an integer >= 1"),
        ({"calibration_folds": 1}, r"calibration_folds=1 is invalid; use an integer >= 2"),
        ({"calibrate": "yes"}, r"calibrate='yes'; use true or false"),
        ({"ranking_length": -1}, r"ranking_length=-1 is invalid"),
        ({"add_route_examples": ["english"]}, r"add_route_examples=\['english'\] is invalid; use false, true, or a list"),
        ({"add_route_examples": []}, r"add_route_examples=\[\] is invalid"),
        ({"featurizers": "StudentFeaturizer"}, r"featurizers='StudentFeaturizer'; use a list"),
        ({"batch_size": 0}, r"batch_size=0 is invalid"),
    ],
)
def test_bad_config_raises(model_storage, execution_context, config, message):
    with pytest.raises(InvalidConfigException, match=message):
        create(model_storage, execution_context, config)


def test_route_examples_need_the_featurizers_student(student_dir, model_storage, execution_context, training_data):
    # Sentence features of the right size that do not come from the student.
    rng = np.random.default_rng(0)
    for message in training_data.training_examples:
        vector = rng.normal(size=(1, 8)).astype(np.float32)
        message.add_features(Features(vector, FEATURE_TYPE_SENTENCE, TEXT, "other_featurizer"))
    classifier = create(model_storage, execution_context, {"add_route_examples": ["en"], "model": str(student_dir)})
    with pytest.raises(InvalidConfigException, match="needs sentence features from the same student"):
        classifier.train(training_data)


def test_route_examples_skipped_with_a_warning_for_other_intents(featurizer, student_dir, model_storage, execution_context):
    data = TrainingData([Message.build(text=t, intent=i) for t, i in [("hi", "greet"), ("bye", "goodbye")]])
    featurizer.process_training_data(data)
    classifier = create(model_storage, execution_context, {"add_route_examples": True, "model": str(student_dir)})
    with pytest.warns(UserWarning, match="none of the intents"):
        classifier.train(data)
    assert classifier.model.labels == ["goodbye", "greet"]


def test_route_examples_are_added_for_route_intents_only(featurizer, student_dir, model_storage, execution_context):
    data = TrainingData(
        [Message.build(text=t, intent=i) for t, i in [("hi", "other"), ("hello", "other"), ("buy milk", "action"),
                                                     ("order pizza", "action"), ("what is 2+2", "math"), ("sqrt of 9", "math")]]
    )
    featurizer.process_training_data(data)
    with_routes = create(model_storage, execution_context, {"add_route_examples": ["en"], "model": str(student_dir)}, "a")
    x, intents, texts = with_routes._training_matrix(data)
    extra_x, extra_intents = with_routes._route_examples(intents, texts, x)
    assert set(extra_intents) == {"action", "other"} and len(extra_intents) > 50  # no recall: the bot has none
    assert extra_x.shape == (len(extra_intents), x.shape[1])
    with_routes.train(data)
    assert with_routes.model.labels == ["action", "math", "other"]


def test_fingerprint_covers_route_data_only_when_used(student_dir):
    assert RouteClassifier.fingerprint_addon({}) is None
    english = RouteClassifier.fingerprint_addon({"add_route_examples": ["en"], "model": str(student_dir)})
    spanish = RouteClassifier.fingerprint_addon({"add_route_examples": ["es"], "model": str(student_dir)})
    assert english and spanish and english != spanish


def test_damaged_model_files_raise(featurizer, featurized, model_storage, execution_context):
    resource = create(model_storage, execution_context).train(featurized)
    with model_storage.read_from(resource) as directory:
        (directory / CLASSIFIER_META_FILE).write_text("{not json")
    with pytest.raises(RasaException, match="damaged model files.*Retrain"):
        RouteClassifier.load(RouteClassifier.get_default_config(), model_storage, resource, execution_context)
