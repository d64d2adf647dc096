"""Few-shot splits and scoring, and the hassil expansion of the Home Assistant corpus."""
import numpy as np
import pytest

from rasa_intent_student.evaluation.quality import few_shot_accuracy, few_shot_split

LABELS = ["a"] * 5 + ["b"] * 4 + ["c"] * 3


def test_few_shot_split_takes_shots_per_label_and_tests_the_rest():
    train, test = few_shot_split(LABELS, shots=2, seed=0)
    assert sorted(LABELS[i] for i in train) == ["a", "a", "b", "b", "c", "c"]
    assert set(train).isdisjoint(test) and len(train) + len(test) == len(LABELS)
    again, _ = few_shot_split(LABELS, shots=2, seed=0)
    assert train.tolist() == again.tolist()
    others = {tuple(few_shot_split(LABELS, shots=2, seed=s)[0]) for s in range(5)}
    assert len(others) > 1  # seeds give different splits


def test_few_shot_split_needs_a_test_example_per_label():
    with pytest.raises(ValueError, match="'c' has 3 examples"):
        few_shot_split(LABELS, shots=3, seed=0)


def test_few_shot_accuracy_on_separable_and_on_noise():
    rng = np.random.default_rng(0)
    onehot = {"a": [1, 0, 0], "b": [0, 1, 0], "c": [0, 0, 1]}
    x = np.array([onehot[label] for label in LABELS], dtype=np.float32) + rng.normal(0, 0.05, (12, 3))
    assert few_shot_accuracy(x, LABELS, shots=2, seeds=(0, 1, 2)) == [1.0, 1.0, 1.0]
    labels = ["a", "b"] * 100
    noise = rng.normal(size=(200, 16))
    assert np.mean(few_shot_accuracy(noise, labels, shots=8, seeds=(0, 1))) < 0.7


def test_hassil_expansion_is_package_text_and_repeatable():
    pytest.importorskip("hassil")
    pytest.importorskip("home_assistant_intents")
    from rasa_intent_student.evaluation.hassil_corpus import expand_language

    corpus = expand_language("en", max_per_intent=12, min_per_intent=12, seed=0)
    assert len(corpus) >= 5
    for intent, texts in corpus.items():
        assert intent.startswith("Hass") and len(texts) == 12 == len(set(texts))
        assert all(t and "{" not in t and "<" not in t and "[" not in t for t in texts)
    assert expand_language("en", max_per_intent=12, min_per_intent=12, seed=0) == corpus
    assert expand_language("xx", 12, 12) == {}
