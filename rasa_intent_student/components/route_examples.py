"""The shipped route examples as extra RouteClassifier training data (option ``add_route_examples``)."""
import hashlib
import json
import logging
from typing import Any, List, Sequence, Tuple

import numpy as np
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.utils.io import raise_warning

from rasa_intent_student.constants import CONFIG_ADD_ROUTE_EXAMPLES, CONFIG_MODEL, LANGUAGES, ROUTES
from rasa_intent_student.encoder import StudentEncoder
from rasa_intent_student.routes import available_languages, load_routes

logger = logging.getLogger(__name__)

# Cosine below which the bot's sentence features cannot come from the classifier's `model`
# (INT8 batching noise alone stays above 0.999).
SAME_STUDENT_MIN_COSINE = 0.99
# Bot examples compared against the encoder for that check.
CHECKED_EXAMPLES = 8


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
    """SHA-256 of the route examples of ``languages``: new data retrains the classifier."""
    rows = json.dumps(load_routes("train", languages), ensure_ascii=False)
    return hashlib.sha256(rows.encode("utf-8")).hexdigest()


def check_same_student(component: str, encoder: StudentEncoder, x: np.ndarray, texts: Sequence[str]) -> None:
    """Raise unless the bot's features ``x`` (n, dim) are ``encoder``'s sentence embeddings of ``texts``."""
    cosine = -1.0
    if x.shape[1] == encoder.dim:
        sample = encoder.encode(list(texts[:CHECKED_EXAMPLES]))
        norms = np.maximum(np.linalg.norm(x[:CHECKED_EXAMPLES], axis=1) * np.linalg.norm(sample, axis=1), 1e-12)
        cosine = float(((sample * x[:CHECKED_EXAMPLES]).sum(axis=1) / norms).min())
    if cosine < SAME_STUDENT_MIN_COSINE:
        raise InvalidConfigException(
            f"{component}: {CONFIG_ADD_ROUTE_EXAMPLES} needs sentence features from the same student as its "
            f"`{CONFIG_MODEL}` ({encoder.model_dir}, dim {encoder.dim}), but the features have dim {x.shape[1]} "
            f"and cosine {cosine:.3f} to it. Set RouteClassifier `{CONFIG_MODEL}` to the StudentFeaturizer's "
            f"`{CONFIG_MODEL}`, and `featurizers` to the StudentFeaturizer's alias if other dense featurizers run."
        )


def encode_route_examples(
    component: str,
    encoder: StudentEncoder,
    languages: Sequence[str],
    bot_intents: Sequence[str],
    bot_texts: Sequence[str],
    batch_size: int,
) -> Tuple[np.ndarray, List[str]]:
    """Sentence features (m, dim) and labels of the route examples for the bot's route intents.

    Only intents named action/recall/other that the bot defines get examples; a
    bot with none of them gets none (and a warning). Texts the bot already has
    are skipped.
    """
    wanted = sorted(set(bot_intents) & set(ROUTES))
    if not wanted:
        raise_warning(
            f"{component}: {CONFIG_ADD_ROUTE_EXAMPLES} is set but the bot has none of the intents "
            f"{list(ROUTES)}; no route examples were added. Rename your intents to use them."
        )
        return np.zeros((0, encoder.dim), np.float32), []
    own = set(bot_texts)
    rows = [r for r in load_routes("train", languages) if r.label in wanted and r.text not in own]
    logger.info(f"Adding {len(rows)} route examples ({', '.join(languages)}) for intents {wanted}.")
    return encoder.encode([r.text for r in rows], batch_size=batch_size), [r.label for r in rows]
