"""StudentFeaturizer: dense sentence and token features from the ONNX student, for any Rasa 3.6 pipeline."""
import contextlib
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Text, Tuple, Type

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent, GraphSchema
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES, FEATURIZER_CLASS_ALIAS, TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import ACTION_TEXT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from rasa_intent_student.batching import iter_batch
from rasa_intent_student.components.config_keys import check_config_keys
from rasa_intent_student.components.route_examples import route_data_fingerprint, route_languages, with_route_examples
from rasa_intent_student.components.student import (
    check_student_dir,
    copy_student,
    load_encoder,
    resolve_model_dir,
    student_fingerprint,
    validate_student_keys,
)
from rasa_intent_student.constants import (
    CONFIG_ADD_ROUTE_EXAMPLES,
    CONFIG_BATCH_SIZE,
    CONFIG_LANGUAGE_NEUTRAL,
    CONFIG_MAX_SEQ_LENGTH,
    CONFIG_MODEL,
    CONFIG_THREADS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_FEATURIZER_THREADS,
)
from rasa_intent_student.encoder import StudentEncoder
from rasa_intent_student.errors import StudentError
from rasa_intent_student.manifest import seal_student
from rasa_intent_student.tokens import TokenEmbeddings

logger = logging.getLogger(__name__)


def align_to_tokens(embedded: TokenEmbeddings, tokens: List[Token]) -> np.ndarray:
    """Average the student token vectors that overlap each Rasa token's characters.

    A Rasa token that no student token overlaps (it lies past the truncation
    point, or the student tokenizer dropped its characters) gets the sentence
    vector rather than zeros, so that it still carries what the text is about.

    Returns:
        float32 array of shape (len(tokens), dim).
    """
    if not tokens:
        return np.zeros((0, embedded.sentence.shape[0]), dtype=np.float32)
    spans = np.array([(t.start, t.end) for t in tokens], dtype=np.int64)  # (n, 2)
    if embedded.offsets:
        offsets = np.array(embedded.offsets, dtype=np.int64)  # (m, 2)
        # Half-open spans overlap when each starts before the other ends.
        overlap = (offsets[None, :, 0] < spans[:, None, 1]) & (offsets[None, :, 1] > spans[:, None, 0])  # (n, m)
    else:
        overlap = np.zeros((len(tokens), 0), dtype=bool)
    counts = overlap.sum(axis=1, keepdims=True)  # (n, 1)
    summed = overlap.astype(np.float32) @ embedded.vectors  # (n, dim)
    aligned = np.where(counts > 0, summed / np.maximum(counts, 1), embedded.sentence[None, :])
    return aligned.astype(np.float32)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class StudentFeaturizer(DenseFeaturizer, GraphComponent):
    """Featurizes text with a rasa-intent-student encoder (ONNX, CPU).

    Adds a dense sentence feature of shape (1, dim) to every message with text
    and, when a tokenizer runs earlier in the pipeline, dense sequence features
    of shape (number of Rasa tokens, dim), so that DIETClassifier can use them
    for intents and entities. Training copies the student files into the model
    archive, with their SHA-256 in its ``student.json``, which therefore loads on
    machines with a different default student. Loading a trained model needs that
    stored student, verified: a missing or damaged one raises, and is never replaced
    by the configured or default student (only ``create``, for a new pipeline, uses those).
    Text with invalid Unicode (lone surrogates) is repaired (U+FFFD), not dropped.

    ``add_route_examples`` adds the package's multilingual route examples to the training
    data, for the bot's intents named action/recall/other (see ``route_examples``). After a
    tokenizer they get WhitespaceTokenizer tokens, whatever tokenizer the bot uses; put this
    featurizer right after the tokenizer, since featurizers before it never see them.
    """

    @classmethod
    def required_components(cls) -> List[Type]:
        """Components that should be included in the pipeline before this component."""
        return []  # a tokenizer is optional: without one only sentence features are added

    @staticmethod
    def required_packages() -> List[Text]:
        """Any extra python dependencies required for this component to run."""
        return ["onnxruntime", "tokenizers"]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config (see parent class for full docstring)."""
        return {
            **DenseFeaturizer.get_default_config(),
            # Student directory (model.onnx, tokenizer.json, student.json); null: the embedded default.
            CONFIG_MODEL: None,
            # Messages per ONNX run while featurizing training data.
            CONFIG_BATCH_SIZE: DEFAULT_BATCH_SIZE,
            # Tokens per text, specials included; longer texts are truncated. null: the student's limit.
            CONFIG_MAX_SEQ_LENGTH: None,
            # onnxruntime intra-op threads; null: onnxruntime's default (all cores). 1 gives the
            # lowest parse latency for one message at a time (see constants.DEFAULT_FEATURIZER_THREADS).
            CONFIG_THREADS: DEFAULT_FEATURIZER_THREADS,
            # Add the shipped route examples to the bot's intents named action/recall/other (other
            # intents are left alone): false, true (every shipped language) or a list of ISO 639-1 codes.
            CONFIG_ADD_ROUTE_EXAMPLES: False,
            # Remove each message's language offset from its sentence features (language_offsets.py), so that
            # intents learnt in one language carry over to others: null: when the student has offsets
            # (the default student does), true: require them, false: raw embeddings.
            CONFIG_LANGUAGE_NEUTRAL: None,
        }

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Validates that the component is configured properly."""
        validate_student_keys(cls.__name__, config)
        alias = config.get(FEATURIZER_CLASS_ALIAS)
        if alias is not None and (not isinstance(alias, str) or not alias.strip()):
            raise InvalidConfigException(
                f"{cls.__name__}: {FEATURIZER_CLASS_ALIAS}={alias!r} is invalid; use a non-empty name, or leave it out."
            )
        route_languages(cls.__name__, config.get(CONFIG_ADD_ROUTE_EXAMPLES))
        neutral = config.get(CONFIG_LANGUAGE_NEUTRAL)
        if neutral is not None and not isinstance(neutral, bool):
            raise InvalidConfigException(
                f"{cls.__name__}: {CONFIG_LANGUAGE_NEUTRAL}={neutral!r} is invalid; use true, false or null "
                "(null: remove language offsets when the student has them)."
            )

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """A hash of the student's files (and of the added route examples), which the graph does not see."""
        student = student_fingerprint(resolve_model_dir(config.get(CONFIG_MODEL)))
        languages = route_languages(cls.__name__, config.get(CONFIG_ADD_ROUTE_EXAMPLES))
        return f"{student}:{route_data_fingerprint(languages)}" if languages else student

    def __init__(
        self,
        config: Dict[Text, Any],
        name: Text,
        model_storage: ModelStorage,
        resource: Resource,
        model_dir: Path,
        graph_schema: Optional[GraphSchema] = None,
    ) -> None:
        """Loads the student in ``model_dir``; ``graph_schema`` (the training graph) checks ``add_route_examples``."""
        super().__init__(name, config)
        self._model_storage = model_storage
        self._resource = resource
        self._graph_schema = graph_schema
        self.encoder: StudentEncoder = load_encoder(self.__class__.__name__, model_dir, self._config)
        self._language_neutral: Optional[bool] = self._config.get(CONFIG_LANGUAGE_NEUTRAL)
        try:
            self.encoder.wants_language_neutral(self._language_neutral)  # true without offsets: refused now, not per message
        except StudentError as e:
            raise InvalidConfigException(f"{self.__class__.__name__}: {CONFIG_LANGUAGE_NEUTRAL}: {e}") from e

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "StudentFeaturizer":
        """Creates a featurizer from the configured student (see parent class for full docstring).

        Unknown keys (typos such as ``thread``) raise here, when a pipeline is trained; ``load``
        does not check them, so that a model trained by an older release still loads.
        """
        check_config_keys(cls.__name__, config, cls.get_default_config())
        config = {**cls.get_default_config(), **config}
        cls.validate_config(config)
        model_dir = check_student_dir(cls.__name__, config[CONFIG_MODEL])
        schema = execution_context.graph_schema
        return cls(config, execution_context.node_name, model_storage, resource, model_dir, schema)

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "StudentFeaturizer":
        """Loads the student copied into the model at training time (see parent class for full docstring)."""
        config = {**cls.get_default_config(), **config}
        with contextlib.ExitStack() as stack:
            try:
                directory = stack.enter_context(model_storage.read_from(resource))
            except ValueError as e:  # the resource is missing: the trained model is incomplete
                # Never fall back to the configured or default student: its vectors would not be
                # the ones the rest of the pipeline was trained on.
                raise InvalidConfigException(
                    f"{cls.__name__}: the trained model holds no student for '{resource.name}' ({e}). "
                    "The model archive is damaged or incomplete; restore it or retrain the model."
                ) from e
            # The encoder reads every file while loading: nothing refers to `directory` afterwards.
            return cls(config, execution_context.node_name, model_storage, resource, Path(directory))

    def train(self, training_data: TrainingData) -> Resource:
        """Copies the student files into the model, with their checksums, so that the archive is self-contained.

        The stored ``student.json`` records the SHA-256 of ``model.onnx`` and ``tokenizer.json``;
        loading the trained model verifies them.
        """
        del training_data  # the student is fixed; training only stores it
        with self._model_storage.write_to(self._resource) as directory:
            copy_student(self.encoder.model_dir, Path(directory))
            stored = seal_student(Path(directory))
            if self.encoder.manifest.checksums and stored.checksums != self.encoder.manifest.checksums:
                raise InvalidConfigException(
                    f"{self.__class__.__name__}: the student files changed in {self.encoder.model_dir} while "
                    "training; restore them and train again."
                )
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Adds the route examples (``add_route_examples``), then featurizes every dense-featurizable attribute."""
        languages = route_languages(self.__class__.__name__, self._config.get(CONFIG_ADD_ROUTE_EXAMPLES))
        training_data = with_route_examples(self.__class__.__name__, training_data, languages, self._graph_schema)
        for attribute in DENSE_FEATURIZABLE_ATTRIBUTES:
            # Story, rule and action-name messages have no text; they get no features.
            examples = [m for m in training_data.training_examples if m.get(attribute)]
            self._featurize(examples, attribute)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Featurizes the text (or action text) of incoming messages."""
        for attribute in (TEXT, ACTION_TEXT):
            self._featurize([m for m in messages if m.get(attribute)], attribute)
        return messages

    def _featurize(self, messages: List[Message], attribute: Text) -> None:
        for batch in iter_batch(messages, self._config[CONFIG_BATCH_SIZE]):
            for message, (sequence, sentence) in zip(batch, self._compute_features(batch, attribute)):
                self.add_features_to_message(sequence, sentence, attribute, message)

    def _compute_features(
        self, messages: List[Message], attribute: Text
    ) -> List[Tuple[Optional[np.ndarray], np.ndarray]]:
        """(sequence (tokens, dim) or None, sentence (1, dim)) for each message."""
        texts = [m.get(attribute) for m in messages]
        token_lists = [m.get(TOKENS_NAMES[attribute]) for m in messages]
        if not any(token_lists):
            # No tokenizer ran: sentence features only.
            vectors = self.encoder.encode(texts, batch_size=len(texts), language_neutral=self._language_neutral)
            return [(None, vector[None, :]) for vector in vectors]
        features = []
        embedded_texts = self.encoder.encode_tokens(texts, batch_size=len(texts), language_neutral=self._language_neutral)
        for embedded, tokens in zip(embedded_texts, token_lists):
            sequence = align_to_tokens(embedded, tokens) if tokens else None
            features.append((sequence, embedded.sentence[None, :].astype(np.float32)))
        return features
