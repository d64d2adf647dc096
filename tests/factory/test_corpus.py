"""The distillation corpus: sources, counts, determinism, and never a dev-split text."""
import json

import pytest

from rasa_intent_student.constants import ROUTE_DATA_DIR
from rasa_intent_student.factory.corpus import (
    CorpusConfig,
    build_corpus,
    corpus_manifest,
    fold,
    load_corpus,
    read_route_texts,
    save_corpus,
    word_ngrams,
)

pytestmark = pytest.mark.factory


def test_corpus_never_includes_dev_rows(tmp_path):
    root = tmp_path / "routes"
    for split, rows in {
        "train": [("book a table", "action"), ("  Thanks   a LOT ", "other"), ("what did I buy?", "recall")],
        "dev": [("thanks a lot", "other"), ("what did i buy?", "recall")],
    }.items():
        (root / split).mkdir(parents=True)
        lines = [json.dumps({"text": t, "label": label, "lang": "en"}) for t, label in rows]
        (root / split / "en.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    corpus = build_corpus(CorpusConfig(languages=("en",), texts_per_language=30, top_words=200, route_data_dir=str(root)))
    folded = {fold(row.text) for row in corpus}
    assert "thanks a lot" not in folded and "what did i buy?" not in folded
    assert [row.text for row in corpus if row.source == "route-train"] == ["book a table"]
    assert len(corpus) == 30 and len(folded) == 30  # de-duplicated, filled with n-grams


def test_shipped_dev_split_stays_out_of_the_real_corpus():
    config = CorpusConfig(languages=("en", "ja"), texts_per_language=900, max_django_per_language=100, top_words=2000)
    corpus = build_corpus(config)
    for lang in config.languages:
        dev = {fold(t) for t in read_route_texts(ROUTE_DATA_DIR, "dev", lang)}
        assert dev, f"no shipped dev rows for {lang}"
        assert not dev & {fold(row.text) for row in corpus if row.lang == lang}
    assert {row.source for row in corpus} >= {"route-train", "chatterbot", "django", "wordfreq"}


def test_no_text_that_bench_scores_on_enters_the_corpus(tmp_path):
    """Route dev rows, memory-retrieval texts and home-assistant-intents sentences (in any language) are dropped,
    even when the route TRAIN split carries them, and edge punctuation does not hide them."""
    from rasa_intent_student.evaluation.crosslingual import memory_texts
    from rasa_intent_student.evaluation.quality import default_corpus

    languages = ("en", "de")
    intents = [text for rows in default_corpus(languages, None).values() for _, text in rows]
    memory = memory_texts(languages)
    root = tmp_path / "routes"
    (root / "train").mkdir(parents=True)
    rows = [(intents[0] + "!", "action"), (memory[0].upper(), "recall"), ("Hi", "other"), ("book a table", "action")]
    (root / "train" / "en.jsonl").write_text("\n".join(json.dumps({"text": t, "label": l, "lang": "en"}) for t, l in rows) + "\n",
                                             encoding="utf-8")
    config = CorpusConfig(languages=languages, texts_per_language=400, top_words=2000, route_data_dir=str(root))
    corpus = build_corpus(config)
    assert [row.text for row in corpus if row.source == "route-train"] == ["book a table"]  # German HA has "Hi"
    folded = {fold(row.text) for row in corpus}
    assert not folded & {fold(t) for t in intents + memory}
    assert fold(" Pause  the Music. ") == fold("pause the music") == "pause the music"


def test_manifest_counts_and_determinism(route_dir, tmp_path):
    config = CorpusConfig(languages=("en", "de", "zh"), texts_per_language=25, top_words=300, route_data_dir=str(route_dir))
    corpus = build_corpus(config)
    manifest = corpus_manifest(corpus, config)
    assert manifest["texts"] == len(corpus) == 75
    assert sum(n for by_source in manifest["counts"].values() for n in by_source.values()) == 75
    assert manifest["counts"]["en"]["route-train"] == 3 and manifest["counts"]["de"]["route-train"] == 2
    assert corpus_manifest(build_corpus(config), config)["sha256"] == manifest["sha256"]
    other_seed = CorpusConfig(**{**manifest["config"], "languages": config.languages, "seed": 1})
    assert corpus_manifest(build_corpus(other_seed), other_seed)["sha256"] != manifest["sha256"]
    save_corpus(corpus, tmp_path / "c.jsonl")
    assert load_corpus(tmp_path / "c.jsonl") == corpus


def test_ngrams_join_without_spaces_for_zh_ja_th():
    import random

    config = CorpusConfig(min_words=2, max_words=2)
    assert all(" " not in p for p in word_ngrams(["猫", "狗"], "zh", 20, config, random.Random(0)))
    assert all(p.count(" ") == 1 for p in word_ngrams(["cat", "dog"], "en", 20, config, random.Random(0)))


def test_unknown_language_lists_valid_codes():
    with pytest.raises(ValueError, match="Valid codes"):
        build_corpus(CorpusConfig(languages=("xx",)))
