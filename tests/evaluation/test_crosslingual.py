"""The fidelity protocols: data, ratio arithmetic, and real scores from the shipped student."""
import numpy as np
import pytest

from rasa_intent_student.constants import LANGUAGES
from rasa_intent_student.evaluation.crosslingual import (
    PROTOCOLS,
    intents_xling_shots,
    load_memory_facts,
    memory_hits,
    memory_protocol,
    ratios,
    route_protocols,
)


def test_memory_set_has_every_language_and_no_answer_in_its_question():
    facts = load_memory_facts()
    assert len(facts) == 60 and len({f["id"] for f in facts}) == 60
    for fact in facts:
        for kind in ("store", "ask"):
            assert sorted(fact[kind]) == sorted(LANGUAGES) and all(t.strip() for t in fact[kind].values())
    assert len({f["ask"]["en"] for f in facts}) == 60


def test_ratios_by_hand():
    student = {"route_xling": {"ko": 0.5, "fr": 0.9}}
    teacher = {"route_xling": {"ko": 1.0, "fr": 0.9}}
    r = ratios(student, teacher)["route_xling"]
    assert r["ko"] == pytest.approx(0.5) and r["fr"] == pytest.approx(1.0)
    assert r["mean"] == pytest.approx(0.7 / 0.95)  # ratio of the means, not mean of the ratios


def test_a_few_examples_per_language_teach_what_english_cannot():
    # English intent i lies on axis i, German intent i on axis 3 + i: orthogonal to everything English shows.
    intents = ("lights_on", "lights_off", "weather")
    corpus = {lang: [(intent, f"{lang} {i} {n}") for i, intent in enumerate(intents) for n in range(12)]
              for lang in ("en", "de")}
    corpus["de"].append(("not_in_english", "de x 0"))

    def encode(texts):
        rng = np.random.default_rng(len(texts))
        vectors = 0.05 * rng.normal(size=(len(texts), 8))
        for row, text in enumerate(texts):
            lang, i, _ = text.split()
            vectors[row, 7 if i == "x" else int(i) + (3 if lang == "de" else 0)] += 1.0
        return vectors

    scores = intents_xling_shots(encode, corpus, shots=(0, 1, 3), seeds=(0, 1))
    assert list(scores) == ["intents_xling+0", "intents_xling+1", "intents_xling+3"]
    assert set(scores["intents_xling+0"]) == {"de"}  # English is the source; the unknown intent is left out
    assert scores["intents_xling+0"]["de"] < 0.5  # English alone says nothing about the German axes
    assert scores["intents_xling+1"]["de"] == 1.0 and scores["intents_xling+3"]["de"] == 1.0


def _encoder():
    from rasa_intent_student.encoder import StudentEncoder

    return StudentEncoder.load()


def test_memory_retrieval_is_perfect_for_an_identity_question_and_chance_for_noise():
    encoder = _encoder()
    facts = load_memory_facts()[:20]
    same = [{"id": f["id"], "store": f["store"], "ask": f["store"]} for f in facts]  # ask with the stored text itself
    assert memory_protocol(encoder.encode, same, ("en", "de"))["memory_xling"]["en"] == 1.0
    rng = np.random.default_rng(0)
    noise = memory_protocol(lambda texts: rng.normal(size=(len(texts), 8)), facts, ("en", "de"))["memory_xling"]
    assert noise["de"] < 0.3  # random vectors find the fact about 1 time in 20
    real = memory_protocol(encoder.encode, facts, ("en", "de"))["memory_xling"]
    assert real["en"] > 0.6 and real["de"] > noise["de"]


def test_memory_hits_are_per_fact_and_average_to_the_protocol_score():
    encode = _encoder().encode
    facts = load_memory_facts()[:20]
    hits = memory_hits(encode, facts, ("en", "de"))
    scores = memory_protocol(encode, facts, ("en", "de"))["memory_xling"]
    assert hits["en"].shape == hits["de"].shape == (20,)
    assert set(np.unique(hits["de"])) <= {0.0, 0.5, 1.0} and set(np.unique(hits["en"])) <= {0.0, 1.0}
    assert scores == {lang: pytest.approx(h.mean()) for lang, h in hits.items()}


def test_memory_differences_table_says_whether_the_set_tells_models_apart():
    from rasa_intent_student.evaluation.tables import format_memory_differences

    table = format_memory_differences({"memory_differences": {"to": "shipped", "facts": 60, "differences": {
        "a": {"mean": 0.004, "low": -0.010, "high": 0.019}, "b": {"mean": -0.03, "low": -0.05, "high": -0.01}}}})
    lines = table.splitlines()
    assert "memory_xling minus shipped" in lines[0] and "95% interval (60 facts)" in lines[0]
    assert "+0.004" in table and "-0.010 to +0.019" in table
    assert next(line for line in lines if line.startswith("| a ")).rstrip(" |").endswith("no")
    assert next(line for line in lines if line.startswith("| b ")).rstrip(" |").endswith("yes")


@pytest.mark.slow
def test_route_protocols_of_the_shipped_student():
    scores = route_protocols(_encoder().encode)
    assert set(scores) == {"route_dev", "route_xling"}
    assert set(scores["route_dev"]) == set(LANGUAGES) and set(scores["route_xling"]) == set(LANGUAGES) - {"en"}
    assert np.mean(list(scores["route_dev"].values())) > 0.8
    assert np.mean(list(scores["route_xling"].values())) > 0.6
    assert set(PROTOCOLS) >= set(scores)
