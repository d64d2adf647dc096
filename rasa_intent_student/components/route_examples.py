"""The shipped route examples as extra training data of a bot (StudentFeaturizer option ``add_route_examples``)."""
import hashlib
import json
import logging
from typing import Any, List, Optional, Sequence, Set

from rasa.engine.graph import GraphSchema
from rasa.nlu.constants import SPACY_DOCS, TOKENS_NAMES
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.shared.utils.io import raise_warning

from rasa_intent_student.constants import CONFIG_ADD_ROUTE_EXAMPLES, LANGUAGES, ROUTES
from rasa_intent_student.routes import available_languages, load_routes

logger = logging.getLogger(__name__)


def route_languages(component: str, value: Any) -> List[str]:
    """Language codes that an ``add_route_examples`` value selects (empty: none)."""
    if value is False or value is None:
        return []
    if value is True:
        return available_languages("train")
    codes = [value] if isinstance(value, str) else value
    if isinstance(codes, list) and codes and all(c in LANGUAGES for c in codes):
        return list(codes)
    raise InvalidConfigException(
        f"{component}: {CONFIG_ADD_ROUTE_EXAMPLES}={value!r} is invalid; use false, true, "
        f"or a list of language codes from {list(LANGUAGES)}."
    )


def route_data_fingerprint(languages: Sequence[str]) -> str:
    """SHA-256 of the route examples of ``languages``: new data retrains the pipeline."""
    rows = json.dumps(load_routes("train", languages), ensure_ascii=False)
    return hashlib.sha256(rows.encode("utf-8")).hexdigest()


def _component_names(graph_schema: Optional[GraphSchema]) -> Set[str]:
    """Class names (base classes included) of the components in ``graph_schema``."""
    nodes = graph_schema.nodes.values() if graph_schema else ()
    return {base.__name__ for node in nodes for base in getattr(node.uses, "__mro__", ())}


def _check_pipeline(component: str, examples: List[Message], graph_schema: Optional[GraphSchema]) -> None:
    """Raises where a component would see the bot's examples but could not process the added ones."""
    if any(m.features for m in examples):
        # The features' origin is the featurizer's alias or graph node name (e.g. run_CountVectorsFeaturizer3).
        names = sorted({str(f.origin) for m in examples for f in m.features if f.origin})
        listed = f" {names}" if names else ""
        raise InvalidConfigException(
            f"{component}: {CONFIG_ADD_ROUTE_EXAMPLES} adds examples after other featurizers{listed} "
            f"featurized the bot's, so the added ones would lack those features. Put {component} "
            f"right after the tokenizer, before every other featurizer, or set {CONFIG_ADD_ROUTE_EXAMPLES}: false."
        )
    if any(m.get(SPACY_DOCS[TEXT]) for m in examples) and "SpacyFeaturizer" in _component_names(graph_schema):
        raise InvalidConfigException(
            f"{component}: {CONFIG_ADD_ROUTE_EXAMPLES} adds examples that SpacyNLP never parsed (it ran before "
            f"{component}), so SpacyFeaturizer cannot featurize them. Remove SpacyFeaturizer (the student's "
            f"vectors take its place), or set {CONFIG_ADD_ROUTE_EXAMPLES}: false."
        )


def with_route_examples(
    component: str, training_data: TrainingData, languages: Sequence[str], graph_schema: Optional[GraphSchema] = None
) -> TrainingData:
    """``training_data`` plus the route examples of ``languages`` for the bot's intents named action/recall/other.

    Only the route intents that the bot defines get examples; a bot with none of them
    gets none (and a warning). Texts the bot already has are skipped. The examples
    are plain intent examples, so every later component sees them as the bot's own.

    When a tokenizer ran before (the bot's examples carry tokens), the added examples are
    tokenized by Rasa's WhitespaceTokenizer with its default config, whatever tokenizer the
    bot uses (Jieba, spaCy, ...): a ja/zh/th text gets one token per whitespace-separated
    chunk (WhitespaceTokenizer refuses those languages only in pipeline validation), and no
    token carries spaCy data such as POS tags. Their intent gets one token, the name, as the
    bot's examples get from tokenizers (the route names hold no ``_``, the default split symbol).
    Featurizers that ran before ``component`` never see them, so features on the bot's
    examples raise, as does a SpacyFeaturizer in ``graph_schema`` after SpacyNLP.
    """
    if not languages:
        return training_data
    examples = training_data.intent_examples
    wanted = sorted({m.get(INTENT) for m in examples} & set(ROUTES))
    if not wanted:
        raise_warning(
            f"{component}: {CONFIG_ADD_ROUTE_EXAMPLES} is set but the bot has none of the intents "
            f"{list(ROUTES)}; no route examples were added. Rename your intents to use them."
        )
        return training_data
    _check_pipeline(component, examples, graph_schema)
    own = {m.get(TEXT) for m in examples}
    rows = [r for r in load_routes("train", languages) if r.label in wanted and r.text not in own]
    added = TrainingData([Message.build(text=r.text, intent=r.label) for r in rows])
    if any(m.get(TOKENS_NAMES[TEXT]) for m in examples):
        # Tokens for the text (and intent, as Tokenizer.process_training_data does) of every added example.
        WhitespaceTokenizer(WhitespaceTokenizer.get_default_config()).process_training_data(added)
    logger.info(f"Adding {len(rows)} route examples ({', '.join(languages)}) for intents {wanted}.")
    return training_data.merge(added)
