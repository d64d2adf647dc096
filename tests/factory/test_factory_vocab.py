import json

import pytest

from rasa_intent_student.factory.prune import prune_tokenizer_json
from rasa_intent_student.factory.vocab import (
    as_texts,
    _count_pieces,
    choose_pieces,
    dialogue_pieces,
    in_scripts,
    split_words,
    unk_rates,
    whole_script_pieces,
    wordfreq_words,
)

pytestmark = pytest.mark.factory


def test_scripts_cover_the_18_languages_and_nothing_else():
    for char in "aéßçğłđ" "жЯ" "ع" "क" "ก" "한ㄱ" "あア" "中" "。":
        assert in_scripts(char), char
    for char in "😀αש":  # emoji, Greek, Hebrew
        assert not in_scripts(char), char


def test_wordfreq_has_17_of_the_18_languages_and_thai_falls_back():
    assert wordfreq_words("th", 10) == []
    assert len(wordfreq_words("ko", 10)) == 10
    choose, held = split_words([str(i) for i in range(30)])
    assert held == ["0", "10", "20"] and not set(held) & set(choose)
    assert as_texts("zh", ["我", "的", "是"], group=2) == ["我的", "是"]
    assert as_texts("en", ["a", "b"]) == ["a", "b"]


def test_choose_pieces_keeps_specials_route_pieces_and_hits_the_target(tiny_teachers, route_dir):
    from tokenizers import Tokenizer

    path = tiny_teachers["bert"] / "tokenizer.json"
    tokenizer = Tokenizer.from_file(str(path))
    keep, report = choose_pieces(path, 500, ("en", "th"), route_dir, prefix="query: ", words_per_language=500)
    assert len(keep) == 500 and keep == sorted(keep)
    assert {0, 1, 2, 3} <= set(keep)
    vocab = json.loads(path.read_text(encoding="utf-8"))["model"]["vocab"]
    assert whole_script_pieces(vocab, "thai") <= set(keep)  # no wordfreq list for th
    assert report["languages_without_wordlist"] == ["th"]
    assert sum(v for k, v in report.items() if isinstance(v, int)) == len(keep)  # every kept piece accounted for
    for text in ("book a table for two", "query: "):
        assert set(tokenizer.encode(text, add_special_tokens=False).ids) <= set(keep), text
    with pytest.raises(ValueError, match="vocab-size"):
        choose_pieces(path, 10, ("en",), route_dir, words_per_language=500)


def test_dialogue_pieces_keep_only_pieces_seen_min_count_times(tiny_teachers):
    from tokenizers import Tokenizer

    from rasa_intent_student.factory.parallel import dialogue_pairs

    tokenizer = Tokenizer.from_file(str(tiny_teachers["bert"] / "tokenizer.json"))
    pairs = dialogue_pairs(("en", "de"))
    counts = _count_pieces(tokenizer, sorted({p.text for p in pairs} | {p.source for p in pairs}))
    every, common = dialogue_pieces(tokenizer, ("en", "de"), min_count=1), dialogue_pieces(tokenizer, ("en", "de"), min_count=3)
    assert set(every) == set(counts)
    assert common == [i for i in every if counts[i] >= 3] and 0 < len(common) < len(every)
    with_staged = dialogue_pieces(tokenizer, ("en", "de"), min_count=1, sources=("dialogue", "dialogue-next"))
    assert set(every) < set(with_staged) and dialogue_pieces(tokenizer, ("en", "de"), sources=("django",)) == []


def test_build_refuses_unknown_dialogue_sources_and_counts_below_one(tmp_path):
    from rasa_intent_student.errors import StudentError
    from rasa_intent_student.factory import BuildConfig, build_student

    with pytest.raises(StudentError, match=r"Unknown dialogue_sources \['dialog'\]. Valid: \['dialogue', 'dialogue-next', 'dialogue-more', 'dialogue-voice', 'dialogue-pairs'\]"):
        build_student(BuildConfig(output=tmp_path / "out", work_dir=tmp_path, dialogue_sources=("dialog",)))
    with pytest.raises(StudentError, match="dialogue_min_count=0 must be >= 1"):
        build_student(BuildConfig(output=tmp_path / "out", work_dir=tmp_path, dialogue_min_count=0))
    assert not (tmp_path / "out").exists()


def test_unk_rates_are_measured_on_dev_or_held_out_words(tiny_teachers, route_dir, tmp_path):
    path = tiny_teachers["bert"] / "tokenizer.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    pieces = [p for p, _ in data["model"]["vocab"]]
    # drop every piece containing "e": English text then needs <unk>
    keep = [i for i, p in enumerate(pieces) if i < 4 or "e" not in p]
    pruned = tmp_path / "pruned.json"
    pruned.write_text(json.dumps(prune_tokenizer_json(data, keep), ensure_ascii=False), encoding="utf-8")
    rates = unk_rates(pruned, path, ("en", "th", "pl"), route_dir, words_per_language=200)
    assert rates["en"]["source"] == "route-dev" and rates["en"]["unk_rate"] > 0.05
    assert rates["th"]["source"] == "route-dev"
    assert rates["pl"]["source"] == "held-out-words" and rates["pl"]["texts"] == 20
    assert rates["en"]["held_out_words"]["texts"] == 20 and rates["th"]["held_out_words"] == {}
    full = unk_rates(path, path, ("en",), route_dir)
    assert full["en"]["unk_rate"] == full["en"]["teacher_unk_rate"] and full["en"]["token_ratio"] == 1.0
