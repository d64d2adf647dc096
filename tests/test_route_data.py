"""The shipped route data keeps its contract: 18 languages, enough rows per class, no dev leakage."""
import re
import unicodedata
from collections import Counter

import pytest

from rasa_intent_student.constants import LANGUAGES, ROUTES
from rasa_intent_student.routes import load_routes

MIN_TRAIN_PER_CLASS = 60
MIN_DEV_PER_CLASS = 20


def normalized(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[\W_]+", "", text)


@pytest.fixture(scope="module")
def splits():
    return {split: load_routes(split) for split in ("train", "dev")}


@pytest.mark.parametrize("split,minimum", [("train", MIN_TRAIN_PER_CLASS), ("dev", MIN_DEV_PER_CLASS)])
def test_every_language_has_enough_rows_per_class(splits, split, minimum):
    counts = Counter((row.lang, row.label) for row in splits[split])
    short = {(lang, label): counts[lang, label] for lang in LANGUAGES for label in ROUTES if counts[lang, label] < minimum}
    assert not short, f"{split}: fewer than {minimum} rows for {short}"


def test_no_duplicates_and_no_dev_row_in_train(splits):
    # Keyed by language: "pause" or "no" are legitimately the same word in several languages.
    train = Counter((row.lang, normalized(row.text)) for row in splits["train"])
    dev = Counter((row.lang, normalized(row.text)) for row in splits["dev"])
    assert not [t for t, n in train.items() if n > 1], "duplicate rows in train"
    assert not [t for t, n in dev.items() if n > 1], "duplicate rows in dev"
    assert not {text for _, text in train} & {text for _, text in dev}, "dev rows leak into train"
