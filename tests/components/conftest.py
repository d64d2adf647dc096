"""Rasa graph fixtures in the style of Rasa's own component tests."""
from typing import Callable, Dict, List, Text

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

# Two examples per intent, two languages: small enough to read, enough to calibrate (2 folds).
EXAMPLES = [
    ("book a table for two at 7", "action"),
    ("pon una alarma a las seis", "action"),
    ("what did I order last week?", "recall"),
    ("¿qué pedí la semana pasada?", "recall"),
    ("hi there!", "other"),
    ("cuéntame un chiste", "other"),
    ("cancel my subscription", "action"),
    ("when is my dentist appointment?", "recall"),
]


@pytest.fixture
def model_storage(tmp_path_factory) -> ModelStorage:
    return LocalModelStorage(tmp_path_factory.mktemp("model_storage"))


@pytest.fixture
def execution_context() -> ExecutionContext:
    return ExecutionContext(GraphSchema({}), "test-model-id")


@pytest.fixture
def tokenizer(model_storage, execution_context) -> WhitespaceTokenizer:
    return WhitespaceTokenizer.create(
        WhitespaceTokenizer.get_default_config(), model_storage, Resource("tokenizer"), execution_context
    )


@pytest.fixture
def training_data() -> TrainingData:
    return TrainingData([Message.build(text=text, intent=intent) for text, intent in EXAMPLES])


@pytest.fixture(scope="session")
def featurizer(student_dir, tmp_path_factory):
    """One featurizer of the test student for tests that only process messages (loading costs ~1 s)."""
    from rasa_intent_student.components.featurizer import StudentFeaturizer

    storage = LocalModelStorage(tmp_path_factory.mktemp("shared_storage"))
    config = {**StudentFeaturizer.get_default_config(), "model": str(student_dir)}
    return StudentFeaturizer.create(config, storage, Resource("featurizer"), ExecutionContext(GraphSchema({}), "m"))


@pytest.fixture
def create_featurizer(student_dir, model_storage, execution_context) -> Callable:
    from rasa_intent_student.components.featurizer import StudentFeaturizer

    def create(config: Dict = None, resource: Text = "featurizer") -> StudentFeaturizer:
        config = {"model": str(student_dir), **(config or {})}
        return StudentFeaturizer.create(
            {**StudentFeaturizer.get_default_config(), **config}, model_storage, Resource(resource), execution_context
        )

    return create


def messages(texts: List[Text]) -> List[Message]:
    return [Message.build(text=text) for text in texts]
