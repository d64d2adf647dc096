import json

import numpy as np
import pytest
from rasa.engine.storage.resource import Resource
from rasa.shared.exceptions import InvalidConfigException, RasaException
from rasa.shared.nlu.constants import TEXT
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
        ({"featurizers": "StudentFeaturizer"}, r"featurizers='StudentFeaturizer'; use a list"),
    ],
)
def test_bad_config_raises(model_storage, execution_context, config, message):
    with pytest.raises(InvalidConfigException, match=message):
        create(model_storage, execution_context, config)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"add_route_examples": True}, r"Move `add_route_examples: true` to the rasa_intent_student\.StudentFeaturizer entry"),
        ({"add_route_examples": ["en", "es"], "model": "student"},
         r'no longer takes add_route_examples, model:.*`add_route_examples: \["en", "es"\]`.*Remove `model`'),
        ({"batch_size": 8}, r"RouteClassifier no longer takes batch_size:.*Remove `batch_size`"),
    ],
)
def test_keys_of_the_old_route_examples_say_where_they_went(model_storage, execution_context, config, message):
    with pytest.raises(InvalidConfigException, match=message):
        create(model_storage, execution_context, config)


def test_model_trained_with_the_old_route_keys_still_loads(featurizer, trained, model_storage, execution_context):
    old_config = {**RouteClassifier.get_default_config(), "add_route_examples": True, "model": None, "threads": None}
    loaded = RouteClassifier.load(old_config, model_storage, trained, execution_context)
    (message,) = loaded.process(featurizer.process(messages(["hello!"])))
    assert message.get("intent")["name"] in {"action", "other", "recall"}


def test_damaged_model_files_raise(featurizer, featurized, model_storage, execution_context):
    resource = create(model_storage, execution_context).train(featurized)
    with model_storage.read_from(resource) as directory:
        (directory / CLASSIFIER_META_FILE).write_text("{not json")
    with pytest.raises(RasaException, match="damaged model files.*Retrain"):
        RouteClassifier.load(RouteClassifier.get_default_config(), model_storage, resource, execution_context)


@pytest.fixture
def trained(featurized, model_storage, execution_context):
    return create(model_storage, execution_context).train(featurized)


def load(model_storage, resource, execution_context):
    return RouteClassifier.load(RouteClassifier.get_default_config(), model_storage, resource, execution_context)


def edit_meta(model_storage, resource, **changes):
    with model_storage.read_from(resource) as directory:
        path = directory / CLASSIFIER_META_FILE
        meta = json.loads(path.read_text())
        meta.update(changes)
        path.write_text(json.dumps(meta))
        return meta


def edit_arrays(model_storage, resource, edit):
    with model_storage.read_from(resource) as directory:
        path = directory / CLASSIFIER_WEIGHTS_FILE
        with np.load(path) as data:
            arrays = {k: data[k].copy() for k in data.files}
        edit(arrays)
        np.savez(path, **arrays)


def test_meta_records_sha256_of_arrays_and_labels(trained, model_storage):
    with model_storage.read_from(trained) as directory:
        meta = json.loads((directory / CLASSIFIER_META_FILE).read_text())
    assert sorted(meta["sha256"]) == ["bias", "meta", "weights"]
    assert all(len(v) == 64 for v in meta["sha256"].values())


def test_nan_weights_refuse(trained, model_storage, execution_context):
    def poison(arrays):
        arrays["weights"][:] = np.nan

    edit_arrays(model_storage, trained, poison)
    with pytest.raises(RasaException, match=r"route_classifier\.npz: 'weights' holds non-finite values"):
        load(model_storage, trained, execution_context)


def test_permuted_label_list_refuses(trained, model_storage, execution_context):
    with model_storage.read_from(trained) as directory:
        labels = json.loads((directory / CLASSIFIER_META_FILE).read_text())["labels"]
    edit_meta(model_storage, trained, labels=labels[::-1])
    with pytest.raises(RasaException, match=r"route_classifier\.json: the labels, temperature or dim do not match"):
        load(model_storage, trained, execution_context)


def test_changed_weight_refuses(trained, model_storage, execution_context):
    def nudge(arrays):
        arrays["weights"][0, 0] += 0.5

    edit_arrays(model_storage, trained, nudge)
    with pytest.raises(RasaException, match=r"route_classifier\.npz: the 'weights' do not match the SHA-256"):
        load(model_storage, trained, execution_context)


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan")])
def test_non_positive_temperature_refuses(trained, model_storage, execution_context, temperature):
    edit_meta(model_storage, trained, temperature=temperature)
    with pytest.raises(RasaException, match=r"route_classifier\.json: temperature=.*finite number > 0"):
        load(model_storage, trained, execution_context)


def test_label_list_of_the_wrong_length_refuses(trained, model_storage, execution_context):
    edit_meta(model_storage, trained, labels=["action", "other"])
    with pytest.raises(RasaException, match=r"route_classifier\.npz: weights \(3, 384\) and bias \(3,\) do not fit 2"):
        load(model_storage, trained, execution_context)


def test_missing_weights_file_refuses(trained, model_storage, execution_context):
    with model_storage.read_from(trained) as directory:
        (directory / CLASSIFIER_WEIGHTS_FILE).unlink()
    with pytest.raises(RasaException, match=r"route_classifier\.npz is missing"):
        load(model_storage, trained, execution_context)


def test_meta_without_checksums_loads_with_a_warning(featurizer, trained, model_storage, execution_context, caplog):
    with model_storage.read_from(trained) as directory:
        path = directory / CLASSIFIER_META_FILE
        meta = json.loads(path.read_text())
        del meta["sha256"]
        path.write_text(json.dumps(meta))
    with caplog.at_level("WARNING"):
        loaded = load(model_storage, trained, execution_context)
    assert "records no checksums" in caplog.text
    (message,) = loaded.process(featurizer.process(messages(["hello!"])))
    assert message.get("intent")["name"] in {"action", "other", "recall"}
