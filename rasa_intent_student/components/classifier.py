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

from rasa_intent_student.components.calibration import LinearModel, fit_calibrated
from rasa_intent_student.components.config_keys import check_config_keys
from rasa_intent_student.components.route_examples import (
    check_same_student,
    encode_route_examples,
    route_data_fingerprint,
    route_languages,
)
from rasa_intent_student.components.student import (
    check_student_dir,
    load_encoder,
    resolve_model_dir,
    student_fingerprint,
    validate_student_keys,
)
from rasa_intent_student.constants import (
    CLASSIFIER_META_FILE,
    CLASSIFIER_WEIGHTS_FILE,
    CONFIG_ADD_ROUTE_EXAMPLES,
    CONFIG_BATCH_SIZE,
    CONFIG_MAX_SEQ_LENGTH,
    CONFIG_MODEL,
    CONFIG_THREADS,
    DEFAULT_BATCH_SIZE,
    ROUTER_C,
    ROUTER_CALIBRATION_FOLDS,
    ROUTER_MAX_ITER,
    ROUTER_RANDOM_STATE,
)
from rasa_intent_student.manifest import array_sha256, json_sha256

logger = logging.getLogger(__name__)

CONFIG_C = "C"
CONFIG_MAX_ITER = "max_iter"
CONFIG_CALIBRATE = "calibrate"
CONFIG_FOLDS = "calibration_folds"
CONFIG_RANDOM_STATE = "random_state"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class RouteClassifier(IntentClassifier, GraphComponent):
    """Predicts intents with a calibrated multinomial logistic regression on dense sentence features.

    - Features: the dense sentence features of TEXT (concatenated over featurizers,
      as Rasa combines them; ``featurizers`` selects some). Sparse features are ignored.
    - Confidences are temperature-scaled on out-of-fold logits, so that thresholds
      such as FallbackClassifier's mean what they say.
    - ``add_route_examples`` adds the package's multilingual examples to the bot's
      intents named action/recall/other (only those the bot defines; other intents
      are left alone, and a bot with none of the three gets a warning). The examples
      are encoded by the student of this component's ``model`` key, which must equal
      the StudentFeaturizer's: training checks that it reproduces the bot's features.
    - Persisted as weights (.npz) and labels/temperature (.json), without pickle.
    """

    @classmethod
    def required_components(cls) -> List[Type]:
        """Components that should be included in the pipeline before this component."""
        return [DenseFeaturizer]

    @staticmethod
    def required_packages() -> List[Text]:
        """Any extra python dependencies required for this component to run."""
        return ["sklearn", "scipy", "onnxruntime", "tokenizers"]

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
            # Add the shipped route examples to the bot's intents named action/recall/other:
            # false, true (every shipped language) or a list of ISO 639-1 codes.
            CONFIG_ADD_ROUTE_EXAMPLES: False,
            # Only with add_route_examples: the student that encodes those examples. It must be the
            # StudentFeaturizer's `model` (null: the embedded default, as for the featurizer).
            CONFIG_MODEL: None,
            CONFIG_BATCH_SIZE: DEFAULT_BATCH_SIZE,
            CONFIG_MAX_SEQ_LENGTH: None,
            CONFIG_THREADS: None,
        }

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Validates that the component is configured properly."""
        name = cls.__name__
        validate_student_keys(name, config)
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
        route_languages(name, config.get(CONFIG_ADD_ROUTE_EXAMPLES))

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """With route examples, a hash of the student and of the route data, which the graph does not see."""
        languages = route_languages(cls.__name__, config.get(CONFIG_ADD_ROUTE_EXAMPLES))
        if not languages:
            return None
        student = student_fingerprint(resolve_model_dir(config.get(CONFIG_MODEL)))
        return f"{student}:{route_data_fingerprint(languages)}"

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

        Unknown keys (typos such as ``calibrate_folds``) raise here, not on ``load``.
        """
        check_config_keys(cls.__name__, config, cls.get_default_config())
        return cls(config, execution_context.node_name, model_storage, resource)

    def _features(self, message: Message) -> Optional[np.ndarray]:
        """The message's dense sentence features, shape (dim,), or None."""
        _, sentence = message.get_dense_features(TEXT, self.config[FEATURIZERS] or None)
        return None if sentence is None else np.asarray(sentence.features, dtype=np.float32).reshape(-1)

    def _training_matrix(self, training_data: TrainingData) -> Tuple[np.ndarray, List[str], List[str]]:
        examples = [e for e in training_data.intent_examples if e.get(INTENT) and e.get(TEXT)]
        rows, intents, texts = [], [], []
        for example in examples:
            features = self._features(example)
            if features is None:
                raise RasaException(
                    f"{self.__class__.__name__}: the training example {example.get(TEXT)!r} has no dense sentence "
                    "features. Put rasa_intent_student.StudentFeaturizer before it in the pipeline."
                )
            rows.append(features)
            intents.append(example.get(INTENT))
            texts.append(example.get(TEXT))
        x = np.vstack(rows) if rows else np.zeros((0, 0), np.float32)
        return x, intents, texts

    def _route_examples(self, intents: List[str], texts: List[str], x: np.ndarray) -> Tuple[np.ndarray, List[str]]:
        """Features (m, dim) and labels of the shipped examples for the bot's route intents."""
        name = self.__class__.__name__
        languages = route_languages(name, self.config[CONFIG_ADD_ROUTE_EXAMPLES])
        if not languages:
            return np.zeros((0, x.shape[1]), np.float32), []
        encoder = load_encoder(name, check_student_dir(name, self.config[CONFIG_MODEL]), self.config)
        check_same_student(name, encoder, x, texts)
        return encode_route_examples(name, encoder, languages, intents, texts, self.config[CONFIG_BATCH_SIZE])

    def train(self, training_data: TrainingData) -> Resource:
        """Fits the logistic regression, then its temperature on out-of-fold logits."""
        x, intents, texts = self._training_matrix(training_data)
        if not intents:
            logger.debug(f"Cannot train '{self.__class__.__name__}': no intent examples. Skipping training.")
            return self._resource
        extra_x, extra_intents = self._route_examples(intents, texts, x)
        x, intents = np.vstack([x, extra_x]), intents + extra_intents
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


def _meta_digest(labels: List[str], temperature: float, dim: int) -> str:
    return json_sha256({"labels": labels, "temperature": temperature, "dim": dim})


def write_model(model: LinearModel, directory: Path) -> None:
    """Weights and bias as .npz; labels, temperature and the SHA-256 of everything as .json."""
    weights = np.asarray(model.weights, dtype=np.float32)
    bias = np.asarray(model.bias, dtype=np.float32)
    labels, temperature, dim = list(model.labels), float(model.temperature), int(weights.shape[1])
    np.savez(directory / CLASSIFIER_WEIGHTS_FILE, weights=weights, bias=bias)
    meta = {
        "labels": labels,
        "temperature": temperature,
        "dim": dim,
        # Verified on load: a damaged array or a reordered label list refuses to load.
        "sha256": {
            "weights": array_sha256(weights),
            "bias": array_sha256(bias),
            "meta": _meta_digest(labels, temperature, dim),
        },
    }
    (directory / CLASSIFIER_META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), "utf-8")


def read_model(directory: Path) -> LinearModel:
    """Inverse of ``write_model``; damaged or inconsistent files raise RasaException naming the file.

    Checks, in order: both files parse; the labels are distinct strings and the temperature is a
    finite number > 0; the arrays' shapes match the labels and ``dim``; the arrays are finite;
    the SHA-256 digests recorded at training match (files written before digests existed load
    with a warning).
    """
    meta_path, arrays_path = directory / CLASSIFIER_META_FILE, directory / CLASSIFIER_WEIGHTS_FILE
    name = RouteClassifier.__name__

    def damaged(path: Path, problem: str) -> RasaException:
        return RasaException(f"{name}: damaged model file {path}: {problem}. Retrain the model.")

    try:
        meta = json.loads(meta_path.read_text("utf-8"))
        labels, temperature = list(meta["labels"]), float(meta["temperature"])
        dim = int(meta.get("dim", -1))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RasaException(f"{name}: damaged model files in {directory}: {meta_path.name}: {e!r}. Retrain the model.") from e
    try:
        with np.load(arrays_path, allow_pickle=False) as arrays:
            weights, bias = arrays["weights"], arrays["bias"]
    except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
        raise RasaException(f"{name}: damaged model files in {directory}: {arrays_path.name}: {e!r}. Retrain the model.") from e

    if not labels or not all(isinstance(label, str) for label in labels) or len(set(labels)) != len(labels):
        raise damaged(meta_path, f"labels {labels!r} are not distinct intent names")
    if not np.isfinite(temperature) or temperature <= 0:
        raise damaged(meta_path, f"temperature={temperature!r}; it must be a finite number > 0")
    if dim < 0:
        dim = int(weights.shape[-1]) if weights.ndim == 2 else -1
    if weights.shape != (len(labels), dim) or bias.shape != (len(labels),):
        raise damaged(
            arrays_path,
            f"weights {weights.shape} and bias {bias.shape} do not fit {len(labels)} labels of dim {dim} "
            f"(from {meta_path.name})",
        )
    for key, array in (("weights", weights), ("bias", bias)):
        if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
            raise damaged(arrays_path, f"'{key}' holds non-finite values (NaN or inf) or is not a float array")

    recorded = meta.get("sha256")
    if recorded is None:
        logger.warning(f"{meta_path} records no checksums (written by an older release); retrain to add them.")
    else:
        actual = {"weights": array_sha256(weights), "bias": array_sha256(bias), "meta": _meta_digest(labels, temperature, dim)}
        for key in ("weights", "bias", "meta"):
            if not isinstance(recorded, dict) or recorded.get(key) != actual[key]:
                path, what = (meta_path, "labels, temperature or dim") if key == "meta" else (arrays_path, f"'{key}'")
                raise damaged(path, f"the {what} do not match the SHA-256 recorded at training in {meta_path.name}")
    return LinearModel(weights.astype(np.float32), bias.astype(np.float32), labels, temperature)
