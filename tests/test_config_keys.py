"""Unknown config keys of StudentFeaturizer and RouteClassifier name the key, a did-you-mean and the valid keys."""
import re

import pytest

pytest.importorskip("rasa")

from rasa.engine.graph import ExecutionContext, GraphSchema  # noqa: E402
from rasa.engine.storage.local_model_storage import LocalModelStorage  # noqa: E402
from rasa.engine.storage.resource import Resource  # noqa: E402
from rasa.shared.exceptions import InvalidConfigException  # noqa: E402

from rasa_intent_student.components.classifier import RouteClassifier  # noqa: E402
from rasa_intent_student.components.config_keys import check_config_keys  # noqa: E402
from rasa_intent_student.components.featurizer import StudentFeaturizer  # noqa: E402


@pytest.fixture
def storage(tmp_path):
    (tmp_path / "storage").mkdir()
    return LocalModelStorage(tmp_path / "storage")


@pytest.fixture
def context():
    return ExecutionContext(GraphSchema({}), "test-model-id")


def user_config(cls, student_dir, **keys):
    """What Rasa's DefaultV1Recipe passes to `create`: the pipeline entry (without `name`) over the defaults."""
    student = {"model": str(student_dir)} if cls is StudentFeaturizer else {}  # RouteClassifier has no student
    return {**cls.get_default_config(), **student, **keys}


@pytest.mark.parametrize(
    "cls, key, suggestion",
    [
        (StudentFeaturizer, "thread", "threads"),
        (StudentFeaturizer, "batchsize", "batch_size"),
        (StudentFeaturizer, "max_seq_len", "max_seq_length"),
        (StudentFeaturizer, "modle", "model"),
        (StudentFeaturizer, "add_route_example", "add_route_examples"),
        (RouteClassifier, "calibrate_folds", "calibration_folds"),
        (RouteClassifier, "rankinglength", "ranking_length"),
        (RouteClassifier, "c", "C"),
    ],
)
def test_misspelled_key_is_named_with_a_suggestion(cls, key, suggestion, storage, context, student_dir):
    config = user_config(cls, student_dir, **{key: 2})
    with pytest.raises(InvalidConfigException) as error:
        cls.create(config, storage, Resource("node"), context)
    message = str(error.value)
    assert message.startswith(f"Unknown key '{key}' for {cls.__name__}; did you mean '{suggestion}'? Valid keys: ")
    for valid in cls.get_default_config():
        assert re.search(rf"\b{re.escape(valid)}\b", message)


def test_unrelated_key_lists_the_valid_keys_without_a_guess():
    with pytest.raises(InvalidConfigException, match=r"^Unknown key 'colour' for StudentFeaturizer\. Valid keys: add_route_examples, alias, "):
        check_config_keys("StudentFeaturizer", {"colour": "red"}, StudentFeaturizer.get_default_config())


@pytest.mark.parametrize("cls", [StudentFeaturizer, RouteClassifier])
def test_default_config_and_rasa_keys_pass(cls):
    check_config_keys(cls.__name__, {**cls.get_default_config(), "name": cls.__name__}, cls.get_default_config())


def test_featurizer_with_only_valid_keys_is_created(storage, context, student_dir):
    config = user_config(StudentFeaturizer, student_dir, threads=1, batch_size=4, alias="student")
    featurizer = StudentFeaturizer.create(config, storage, Resource("f"), context)
    assert featurizer._identifier == "student"


def test_load_of_a_model_with_an_old_unknown_key_still_works(storage, context, student_dir):
    """A model trained by a release that ignored the key must load: only `create` checks keys."""
    config = user_config(StudentFeaturizer, student_dir)
    StudentFeaturizer.create(config, storage, Resource("f"), context).train(None)
    loaded = StudentFeaturizer.load({**config, "thread": 2}, storage, Resource("f"), context)
    assert loaded.encoder is not None


@pytest.mark.parametrize(
    "cls, config, message",
    [
        (StudentFeaturizer, {"batch_size": -4}, r"batch_size=-4 is invalid; use a positive integer"),
        (StudentFeaturizer, {"threads": 0}, r"threads=0 is invalid"),
        (StudentFeaturizer, {"alias": 3}, r"alias=3 is invalid; use a non-empty name"),
        (StudentFeaturizer, {"add_route_examples": "all"}, r"add_route_examples='all' is invalid; use false, true"),
        (StudentFeaturizer, {"language_neutral": "yes"}, r"language_neutral='yes' is invalid; use true, false or null"),
        (RouteClassifier, {"C": -1.0}, r"C=-1.0 is invalid; use a positive number"),
        (RouteClassifier, {"calibration_folds": 0}, r"calibration_folds=0 is invalid; use an integer >= 2"),
        (RouteClassifier, {"random_state": -3}, r"random_state=-3 is invalid"),
    ],
)
def test_bad_values_raise_clearly(cls, config, message, storage, context, student_dir):
    with pytest.raises(InvalidConfigException, match=message):
        cls.create(user_config(cls, student_dir, **config), storage, Resource("node"), context)
