"""Parallel pairs: the dialogue files are complete and in the right scripts; Django pairs; translation rows."""
import json
import re

import numpy as np
import pytest

from rasa_intent_student.constants import LANGUAGES
from rasa_intent_student.factory.corpus import CorpusConfig, django_root, fold
from rasa_intent_student.evaluation.crosslingual import memory_texts
from rasa_intent_student.factory.distill.data import build_training_set
from rasa_intent_student.factory.parallel import (
    MORE_DIALOGUE_DIR,
    NEXT_DIALOGUE_DIR,
    PAIRS_DIALOGUE_DIR,
    PARALLEL_DATA_DIR,
    VOICE_DIALOGUE_DIR,
    ParallelPair,
    dialogue_dirs,
    dialogue_pairs,
    django_pairs,
    drop_banned,
    memory_pairs,
)

pytestmark = pytest.mark.factory

# One script each language must show (Latin-script languages: no other script).
SCRIPTS = {"ko": "[\u3131-\u318e\uac00-\ud7a3]", "ja": "[\u3040-\u30ff\u4e00-\u9fff]", "zh": "[\u4e00-\u9fff]", "ru": "[\u0400-\u04ff]",
           "ar": "[\u0600-\u06ff]", "hi": "[\u0900-\u097f]", "th": "[\u0e00-\u0e7f]"}


@pytest.mark.parametrize("directory, least", [(PARALLEL_DATA_DIR, 1320), (NEXT_DIALOGUE_DIR, 960), (MORE_DIALOGUE_DIR, 960),
                                                 (VOICE_DIALOGUE_DIR, 960)], ids=["recipe", "next", "more", "voice"])
def test_dialogue_pairs_cover_every_language_in_its_script(directory, least):
    pairs = dialogue_pairs(LANGUAGES, [directory])
    rows = sum(1 for path in directory.glob("dialogue-*.jsonl") for line in path.open(encoding="utf-8") if line.strip())
    assert rows >= least and len({p.source for p in pairs}) >= 0.95 * rows
    assert len(pairs) == 17 * rows  # every source translated into the 17 other languages
    for lang, script in SCRIPTS.items():
        texts = [p.text for p in pairs if p.lang == lang]
        assert all(re.search(script, t) for t in texts), lang
    identical = [p for p in pairs if p.text.casefold() == p.source.casefold()]
    assert len(identical) < 0.01 * len(pairs)  # translations, not copies


def test_memory_pairs_are_complete_and_none_is_a_benchmark_text():
    """Each fact and its question in all 18 languages, in their scripts; none equals a text the memory protocol scores."""
    pairs = memory_pairs()
    assert len(pairs) >= 240 and len({p.store["en"] for p in pairs}) == len(pairs)
    for lang, script in SCRIPTS.items():
        assert all(re.search(script, p.store[lang]) and re.search(script, p.ask[lang]) for p in pairs), lang
    assert all(p.store[lang] != p.ask[lang] for p in pairs for lang in LANGUAGES)
    banned = {fold(t) for t in memory_texts()}
    assert not [t for p in pairs for side in p for t in side.values() if fold(t) in banned]
    # As a parallel source, each fact and each question is a message with its 17 translations.
    assert len(dialogue_pairs(LANGUAGES, [PAIRS_DIALOGUE_DIR])) == 2 * 17 * len(pairs)


def test_a_memory_pair_without_a_language_is_refused_with_its_line(tmp_path):
    from rasa_intent_student.errors import StudentError

    row = {"id": "pair-x-01", "store": {lang: "fact" for lang in LANGUAGES}, "ask": {lang: "question" for lang in LANGUAGES}}
    del row["ask"]["th"]
    (tmp_path / "dialogue-pairs-x.jsonl").write_text("\n" + json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(StudentError, match=r"dialogue-pairs-x.jsonl:2 has no text for \['th'\]"):
        memory_pairs(tmp_path)
    with pytest.raises(StudentError, match="No memory pairs"):
        memory_pairs(tmp_path / "empty")


def test_the_staged_source_adds_its_files_in_name_order():
    recipe, staged = dialogue_pairs(("en", "de")), dialogue_pairs(("en", "de"), [NEXT_DIALOGUE_DIR])
    both = dialogue_pairs(("en", "de"), dialogue_dirs(("dialogue", "dialogue-next", "django")))
    assert dialogue_dirs(("django",)) == [] and dialogue_dirs(("dialogue-next",)) == [NEXT_DIALOGUE_DIR]
    assert dialogue_dirs(("dialogue-more", "dialogue")) == [MORE_DIALOGUE_DIR, PARALLEL_DATA_DIR]
    assert sorted(both) == sorted(recipe + staged) and all(p.origin == "dialogue" for p in both)
    # Name order across the folders: the staged "aboutme" file comes before the recipe's "chat".
    first_staged = (NEXT_DIALOGUE_DIR / "dialogue-aboutme.jsonl").open(encoding="utf-8").readline()
    assert both[0].source in first_staged and both[0] not in recipe


def test_unknown_parallel_sources_are_refused_by_name():
    from rasa_intent_student.errors import StudentError
    from rasa_intent_student.factory.distill.config import DistillConfig

    with pytest.raises(StudentError, match=r"Unknown parallel_sources \['dialog'\]. Valid: \['dialogue', 'dialogue-next', 'dialogue-more', 'dialogue-voice', 'dialogue-pairs', 'django'\]"):
        DistillConfig(output="x", corpus=CorpusConfig(parallel_sources=("dialog", "django"))).check()
    DistillConfig(output="x", corpus=CorpusConfig(parallel_sources=("dialogue", "dialogue-next"))).check()


def test_django_pairs_are_english_msgid_and_translation():
    pairs = django_pairs(("es", "ja"), django_root(), per_language=50)
    assert {p.lang for p in pairs} == {"es", "ja"} and len(pairs) == 100
    assert all(p.origin == "django" and p.text != p.source for p in pairs)
    assert all(re.search(SCRIPTS["ja"], p.text) for p in pairs if p.lang == "ja")


def test_banned_texts_drop_the_whole_pair():
    pairs = [ParallelPair("Thanks a lot", "Danke", "de", "dialogue"), ParallelPair("Good night", "Gute Nacht", "de", "dialogue")]
    assert drop_banned(pairs, {fold("thanks  A LOT")}) == pairs[1:]
    assert drop_banned(pairs, {fold("gute nacht")}) == pairs[:1]


def test_translation_rows_point_at_their_english_source(route_dir):
    config = CorpusConfig(languages=("en", "de", "th"), texts_per_language=40, top_words=300, route_data_dir=str(route_dir),
                          django_pairs_per_language=20)
    data = build_training_set(config)
    translated = data.translation_rows(("dialogue", "django"))
    assert translated.sum() > 2500  # 1,320 dialogue sources x 2 languages (less the evaluation texts), plus Django pairs
    for i in np.nonzero(translated)[0][:200]:
        source = data.rows[data.source_index[i]]
        assert source.lang == "en" and data.rows[i].lang in ("de", "th")
    only_dialogue = data.translation_rows(("dialogue",))
    assert 0 < only_dialogue.sum() < translated.sum()
    banned = {fold(t) for t in memory_texts()}
    assert not [r for r in data.rows if fold(r.text) in banned]  # the memory protocol is never trained on
    assert len({(r.lang, fold(r.text)) for r in data.rows}) == len(data.rows)  # no text twice
