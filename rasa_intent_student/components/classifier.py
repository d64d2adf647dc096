"""RouteClassifier: calibrated logistic regression on dense sentence features."""
import contextlib
import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Text, Tuple, Type

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers import LABEL_RANKING_LENGTH
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.exceptions import InvalidConfigException, RasaException
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.utils.tensorflow.constants import FEATURIZERS, RANKING_LENGTH

from rasa_intent_student.calibration import LinearModel, fit_calibrated
from rasa_intent_student.components.classifier_files import read_model, write_model
from rasa_intent_student.components.config_keys import check_config_keys
from rasa_intent_student.constants import (
    CLASSIFIER_META_FILE,
    CLASSIFIER_WEIGHTS_FILE,
    CONFIG_ADD_ROUTE_EXAMPLES,
    CONFIG_BATCH_SIZE,
    CONFIG_MAX_SEQ_LENGTH,
    CONFIG_MODEL,
    CONFIG_THREADS,
    ROUTER_C,
    ROUTER_CALIBRATION_FOLDS,
    ROUTER_MAX_ITER,
    ROUTER_RANDOM_STATE,
)

logger = logging.getLogger(__name__)

CONFIG_C = "C"
CONFIG_MAX_ITER = "max_iter"
CONFIG_CALIBRATE = "calibrate"
CONFIG_FOLDS = "calibration_folds"
CONFIG_RANDOM_STATE = "random_state"
# Keys of releases in which the classifier encoded the route examples with a student of its own;
# the StudentFeaturizer adds and encodes them now.
FEATURIZER_KEYS = (CONFIG_ADD_ROUTE_EXAMPLES, CONFIG_MODEL, CONFIG_BATCH_SIZE, CONFIG_MAX_SEQ_LENGTH, CONFIG_THREADS)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class RouteClassifier(IntentClassifier, GraphComponent):
    """Predicts intents with a calibrated multinomial logistic regression on dense sentence features.

    - Features: the dense sentence features of TEXT (concatenated over featurizers,
      as Rasa combines them; ``featurizers`` selects some). Sparse features are ignored.
    - Confidences are temperature-scaled on out-of-fold logits, so that thresholds
      such as FallbackClassifier's mean what they say.
    - It trains on the examples it is given: the shipped route examples come in as
      training data (StudentFeaturizer's ``add_route_examples``).
    - Persisted as weights (.npz) and labels/temperature (.json), without pickle.
    """

    @classmethod
    def required_components(cls) -> List[Type]:
        """Components that should be included in the pipeline before this component."""
        return [DenseFeaturizer]

    @staticmethod
    def required_packages() -> List[Text]:
        """Any extra python dependencies required for this component to run."""
        return ["sklearn", "scipy"]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config (see parent class for full docstring)."""
        return {
            # Inverse L2 regularization strength of the logistic regression.
            CONFIG_C: ROUTER_C,
            # lbfgs iterations.
            CONFIG_MAX_ITER: ROUTER_MAX_ITER,
            # Fit a softmax temperature on out-of-fold predictions (needs 2+ examples per intent).
            CONFIG_CALIBRATE: True,
            # Folds for that calibration (fewer if an intent has fewer examples).
            CONFIG_FOLDS: ROUTER_CALIBRATION_FOLDS,
            CONFIG_RANDOM_STATE: ROUTER_RANDOM_STATE,
            # Intents kept in `intent_ranking`; 0 keeps all.
            RANKING_LENGTH: LABEL_RANKING_LENGTH,
            # Names/aliases of the featurizers whose dense sentence features are used; empty: all.
            FEATURIZERS: [],
        }

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Validates that the component is configured properly."""
        name = cls.__name__
        c = config.get(CONFIG_C)
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not c > 0:
            raise InvalidConfigException(f"{name}: {CONFIG_C}={c!r} is invalid; use a positive number such as 30.")
        for key, low in ((CONFIG_MAX_ITER, 1), (CONFIG_FOLDS, 2), (CONFIG_RANDOM_STATE, 0), (RANKING_LENGTH, 0)):
            value = config.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidConfigException(f"{name}: {key}={value!r} is invalid; use an integer >= {low}.")
        if not isinstance(config.get(CONFIG_CALIBRATE), bool):
            value = config.get(CONFIG_CALIBRATE)
            raise InvalidConfigException(f"{name}: {CONFIG_CALIBRATE}={value!r}; use true or false.")
        if not isinstance(config.get(FEATURIZERS), list):
            value = config.get(FEATURIZERS)
            raise InvalidConfigException(f"{name}: {FEATURIZERS}={value!r}; use a list of featurizer names.")

    @classmethod
    def check_moved_keys(cls, config: Dict[Text, Any]) -> None:
        """Raise for ``FEATURIZER_KEYS``, saying where they go now."""
        moved = [key for key in FEATURIZER_KEYS if key in config]
        if not moved:
            return
        name = cls.__name__
        fixes = []
        if CONFIG_ADD_ROUTE_EXAMPLES in config:
            value = json.dumps(config[CONFIG_ADD_ROUTE_EXAMPLES])
            fixes.append(f"Move `{CONFIG_ADD_ROUTE_EXAMPLES}: {value}` to the rasa_intent_student.StudentFeaturizer entry.")
        others = [key for key in moved if key != CONFIG_ADD_ROUTE_EXAMPLES]
        if others:
            fixes.append(f"Remove {', '.join(f'`{key}`' for key in others)}: the StudentFeaturizer's own keys choose the student.")
        raise InvalidConfigException(
            f"{name} no longer takes {', '.join(moved)}: the StudentFeaturizer adds the route examples to the "
            f"training data and encodes them, and {name} only classifies. {' '.join(fixes)}"
        )

    def __init__(
        self,
        config: Dict[Text, Any],
        name: Text,
        model_storage: ModelStorage,
        resource: Resource,
        model: Optional[LinearModel] = None,
    ) -> None:
        """Wraps a trained ``model``, or an untrained classifier when it is None."""
        self.name = name
        self.config = {**self.get_default_config(), **config}
        self.validate_config(self.config)
        self._model_storage = model_storage
        self._resource = resource
        self.model = model

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "RouteClassifier":
        """Creates a new untrained component (see parent class for full docstring).

        Unknown keys (typos such as ``calibrate_folds``) and ``FEATURIZER_KEYS`` raise here, not
        on ``load``: a model trained by an older release, with those keys, still loads.
        """
        cls.check_moved_keys(config)
        check_config_keys(cls.__name__, config, cls.get_default_config())
        return cls(config, execution_context.node_name, model_storage, resource)

    def _features(self, message: Message) -> Optional[np.ndarray]:
        """The message's dense sentence features, shape (dim,), or None."""
        _, sentence = message.get_dense_features(TEXT, self.config[FEATURIZERS] or None)
        return None if sentence is None else np.asarray(sentence.features, dtype=np.float32).reshape(-1)

    def _training_matrix(self, training_data: TrainingData) -> Tuple[np.ndarray, List[str]]:
        examples = [e for e in training_data.intent_examples if e.get(INTENT) and e.get(TEXT)]
        rows, intents = [], []
        for example in examples:
            features = self._features(example)
            if features is None:
                raise RasaException(
                    f"{self.__class__.__name__}: the training example {example.get(TEXT)!r} has no dense sentence "
                    "features. Put rasa_intent_student.StudentFeaturizer before it in the pipeline."
                )
            rows.append(features)
            intents.append(example.get(INTENT))
        x = np.vstack(rows) if rows else np.zeros((0, 0), np.float32)
        return x, intents

    def train(self, training_data: TrainingData) -> Resource:
        """Fits the logistic regression, then its temperature on out-of-fold logits."""
        x, intents = self._training_matrix(training_data)
        if not intents:
            logger.debug(f"Cannot train '{self.__class__.__name__}': no intent examples. Skipping training.")
            return self._resource
        labels = sorted(set(intents))
        y = np.array([labels.index(i) for i in intents])
        cfg = self.config
        self.model = fit_calibrated(x, y, labels, cfg[CONFIG_C], cfg[CONFIG_MAX_ITER], cfg[CONFIG_RANDOM_STATE],
                                    cfg[CONFIG_FOLDS] if cfg[CONFIG_CALIBRATE] else None)
        logger.debug(f"Trained on {len(y)} examples, {len(labels)} intents, temperature {self.model.temperature:.3f}.")
        self.persist()
        return self._resource

    def process(self, messages: List[Message]) -> List[Message]:
        """Sets `intent` and `intent_ranking` with calibrated confidences."""
        featurized = [(m, f) for m in messages for f in [self._features(m)] if f is not None]
        for message in messages:
            # No features (empty text) or no model: no intent, as Rasa's own classifiers do.
            message.set(INTENT, {"name": None, PREDICTED_CONFIDENCE_KEY: 0.0}, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [], add_to_output=True)
        if self.model is None or not featurized:
            return messages
        probs = self.model.predict_proba(np.vstack([f for _, f in featurized]))
        limit = self.config[RANKING_LENGTH]
        for (message, _), row in zip(featurized, probs):
            order = np.argsort(-row, kind="stable")
            ranking = [{"name": self.model.labels[i], PREDICTED_CONFIDENCE_KEY: float(row[i])} for i in order]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking[:limit] if limit > 0 else ranking, add_to_output=True)
        return messages

    def persist(self) -> None:
        """Writes weights (.npz) and labels/temperature (.json); no pickle."""
        if self.model is None:
            return
        with self._model_storage.write_to(self._resource) as directory:
            write_model(self.model, Path(directory))

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "RouteClassifier":
        """Loads the trained weights (see parent class for full docstring)."""
        with contextlib.ExitStack() as stack:
            try:
                directory = Path(stack.enter_context(model_storage.read_from(resource)))
            except ValueError:  # only a missing resource; damaged files must raise
                logger.debug(f"Resource '{resource.name}' holds no trained {cls.__name__}; creating an untrained one.")
                return cls.create(config, model_storage, resource, execution_context)
            present = [n for n in (CLASSIFIER_META_FILE, CLASSIFIER_WEIGHTS_FILE) if (directory / n).is_file()]
            if not present:  # trained on no examples
                return cls.create(config, model_storage, resource, execution_context)
            if len(present) == 1:
                missing = CLASSIFIER_WEIGHTS_FILE if present[0] == CLASSIFIER_META_FILE else CLASSIFIER_META_FILE
                raise RasaException(
                    f"{cls.__name__}: {directory / missing} is missing beside {present[0]}. Retrain the model."
                )
            model = read_model(directory)
        return cls(config, execution_context.node_name, model_storage, resource, model)
