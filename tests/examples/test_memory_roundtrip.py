"""Multilingual store-then-recall through memory_bot's own encoder, SQLite store and search.

18 users, one per language, each store 3 facts (10 draws) of the memory retrieval set in their language; each then asks
for every fact in their own language and in English. The answer is the top search hit among *their* facts.
"""
import random

import numpy as np
import pytest

from rasa_intent_student.constants import LANGUAGES
from rasa_intent_student.evaluation.crosslingual import load_memory_facts

FACTS_PER_USER = 3
DRAWS = 10  # 540 questions of each kind: one question is 0.2 points


@pytest.fixture(scope="module")
def memory_encoder():
    from examples.memory_bot.actions.embedding import MemoryEncoder

    return MemoryEncoder.load()


def round_trip(memory_encoder, tmp_path, seed: int):
    from examples.memory_bot.actions.memory import SQLiteMemoryStore

    store = SQLiteMemoryStore(tmp_path / f"memory-{seed}.db")
    facts = load_memory_facts()
    rng = random.Random(seed)
    right = {"own": [], "en": []}
    for lang in LANGUAGES:
        user = f"user-{lang}"
        mine = rng.sample(facts, FACTS_PER_USER)
        for fact in mine:
            store.add(user, "action", fact["store"][lang], memory_encoder.embed(fact["store"][lang]))
        for fact in mine:
            for kind, question in (("own", fact["ask"][lang]), ("en", fact["ask"]["en"])):
                hit = store.search(user, memory_encoder.embed(question), center=memory_encoder.center)
                right[kind].append(bool(hit) and hit[0].event.text == fact["store"][lang])
    store.close()
    return {kind: float(np.mean(v)) for kind, v in right.items()}


def test_multilingual_store_then_recall_round_trip(memory_encoder, tmp_path):
    scores = [round_trip(memory_encoder, tmp_path, seed) for seed in range(DRAWS)]
    own, english = np.mean([s["own"] for s in scores]), np.mean([s["en"] for s in scores])
    print(f"round trip, 18 languages x {FACTS_PER_USER} facts x {DRAWS} draws: own language {own:.3f}, English question {english:.3f}")
    # Measured with the shipped student (10 draws, 540 questions of each kind): own 0.989, English 0.983. Previous
    # defaults: 0.989 / 0.978, 0.985 / 0.976 (10 draws); 3 draws: 0.981 / 0.975, 0.975 / 0.932, 0.957 / 0.938,
    # 0.969 / 0.914, 0.920 / 0.833.
    # The goal is 0.95 for both.
    assert own >= 0.95 and english >= 0.95, (own, english)
