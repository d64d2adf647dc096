"""The fidelity protocols: what a multilingual bot needs of its encoder, per language.

Each protocol takes ``encode(texts) -> (n, dim)`` (any encoder: an ONNX student, the teacher,
a torch model mid-training) and returns a score per language:

* ``route_dev``: macro-F1 on the route dev split, router trained on the route train split (all languages).
* ``route_xling``: macro-F1 on each other language's dev rows, router trained on English train rows only.
* ``intents_fewshot``: Home Assistant intents, 8 examples per intent in the same language (accuracy).
* ``intents_xling``: Home Assistant intents, trained on every English sentence, tested on each other language.
* ``intents_xling+k`` (on request): as ``intents_xling`` with k sentences per intent of the language added.
* ``memory_xling``: top-1 retrieval of a stored fact: stored in English and asked in the language, and
  stored in the language and asked in English (mean of both); for English, stored and asked in English.

The router is ``LogisticRouter``, the same class-balanced logistic regression a bot gets.
"""
import json
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from rasa_intent_student.constants import LANGUAGES, QUALITY_SEEDS, QUALITY_SHOTS

Encode = Callable[[List[str]], np.ndarray]
Scores = Dict[str, Dict[str, float]]  # protocol -> language -> score
MEMORY_DATA_FILE = Path(__file__).resolve().parent / "data" / "memory_xling.jsonl"
PROTOCOLS = ("route_dev", "route_xling", "intents_fewshot", "intents_xling", "memory_xling")
SOURCE_LANGUAGE = "en"


def _unit(x: np.ndarray) -> np.ndarray:
    from rasa_intent_student.pooling import normalize

    return normalize(np.asarray(x, dtype=np.float32))


def route_protocols(encode: Encode, languages: Sequence[str] = LANGUAGES) -> Scores:
    """``route_dev`` and ``route_xling`` macro-F1 per language."""
    from rasa_intent_student.evaluation.metrics import macro_f1
    from rasa_intent_student.evaluation.router import LogisticRouter
    from rasa_intent_student.routes import load_routes

    train, dev = load_routes("train", languages), load_routes("dev", languages)
    train_x, dev_x = _unit(encode([e.text for e in train])), _unit(encode([e.text for e in dev]))
    dev_y = np.array([e.label for e in dev])
    dev_lang = np.array([e.lang for e in dev])
    english = np.array([e.lang == SOURCE_LANGUAGE for e in train])
    everywhere = LogisticRouter().fit(train_x, [e.label for e in train])
    from_english = LogisticRouter().fit(train_x[english], [e.label for e, keep in zip(train, english) if keep])
    pred_all, pred_en = np.array(everywhere.predict(dev_x)), np.array(from_english.predict(dev_x))
    out: Scores = {"route_dev": {}, "route_xling": {}}
    for lang in languages:
        rows = dev_lang == lang
        out["route_dev"][lang] = macro_f1(dev_y[rows].tolist(), pred_all[rows].tolist())
        if lang != SOURCE_LANGUAGE:
            out["route_xling"][lang] = macro_f1(dev_y[rows].tolist(), pred_en[rows].tolist())
    return out


def intent_protocols(encode: Encode, corpus: Dict[str, List[Tuple[str, str]]], shots: int = QUALITY_SHOTS,
                     seeds: Sequence[int] = QUALITY_SEEDS) -> Scores:
    """``intents_fewshot`` and ``intents_xling`` accuracy per language of an {lang: [(intent, text)]} corpus."""
    from rasa_intent_student.evaluation.quality import few_shot_accuracy
    from rasa_intent_student.evaluation.router import LogisticRouter

    embedded = {lang: _unit(encode([text for _, text in rows])) for lang, rows in corpus.items()}
    labels = {lang: [intent for intent, _ in rows] for lang, rows in corpus.items()}
    out: Scores = {"intents_fewshot": {}, "intents_xling": {}}
    for lang in corpus:
        out["intents_fewshot"][lang] = float(np.mean(few_shot_accuracy(embedded[lang], labels[lang], shots, seeds)))
    if SOURCE_LANGUAGE in corpus:
        router = LogisticRouter().fit(embedded[SOURCE_LANGUAGE], labels[SOURCE_LANGUAGE])
        known = set(labels[SOURCE_LANGUAGE])
        for lang in corpus:
            if lang == SOURCE_LANGUAGE:
                continue
            keep = np.array([label in known for label in labels[lang]])
            if keep.any():
                predicted = np.array(router.predict(embedded[lang][keep]))
                out["intents_xling"][lang] = float(np.mean(predicted == np.array(labels[lang])[keep]))
    return out


def intents_xling_shots(encode: Encode, corpus: Dict[str, List[Tuple[str, str]]], shots: Sequence[int],
                        seeds: Sequence[int] = QUALITY_SEEDS) -> Scores:
    """``intents_xling+k`` for each k in ``shots``: accuracy per language of a router trained on every English
    sentence plus k sentences per intent in the language (what a bot written in English gains from a few examples
    per language). For one seed every k is tested on the same rows (those outside the largest k's picks, which nest);
    the score is the mean over seeds."""
    from rasa_intent_student.evaluation.quality import few_shot_split
    from rasa_intent_student.evaluation.router import LogisticRouter

    if SOURCE_LANGUAGE not in corpus:
        return {}
    english_x = _unit(encode([text for _, text in corpus[SOURCE_LANGUAGE]]))
    english_y = [intent for intent, _ in corpus[SOURCE_LANGUAGE]]
    english_only, known = LogisticRouter().fit(english_x, english_y), set(english_y)
    out: Scores = {f"intents_xling+{k}": {} for k in shots}
    for lang, rows in corpus.items():
        keep = np.array([intent in known for intent, _ in rows])
        if lang == SOURCE_LANGUAGE or not keep.any():
            continue
        x = _unit(encode([text for _, text in rows]))[keep]  # the whole language's texts: the embedding cache's key
        y = np.array([intent for intent, _ in rows])[keep]
        accuracy: Dict[int, List[float]] = {k: [] for k in shots}
        for seed in seeds:
            picked, test = few_shot_split(y.tolist(), max(shots), seed)
            for k in shots:
                chosen = [i for label in sorted(set(y)) for i in picked[y[picked] == label][:k]]
                router = english_only if k == 0 else LogisticRouter(seed=seed).fit(
                    np.vstack([english_x, x[chosen]]), english_y + y[chosen].tolist())
                accuracy[k].append(float(np.mean(np.array(router.predict(x[test])) == y[test])))
        for k in shots:
            out[f"intents_xling+{k}"][lang] = float(np.mean(accuracy[k]))
    return out


def load_memory_facts(path: Path = MEMORY_DATA_FILE) -> List[Dict[str, Dict[str, str]]]:
    """Rows {"id", "store": {lang: text}, "ask": {lang: text}} of the memory retrieval set."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def memory_hits(encode: Encode, facts: Optional[List[Dict[str, Dict[str, str]]]] = None,
                languages: Sequence[str] = LANGUAGES) -> Dict[str, np.ndarray]:
    """Per language, a hit per fact: 1 where its question finds it first, 0 where not (other languages: the mean of
    stored in English and asked in the language, and the reverse, so 0.5 where one direction finds it)."""
    facts = facts if facts is not None else load_memory_facts()
    store = {lang: _unit(encode([f["store"][lang] for f in facts])) for lang in languages}
    ask = {lang: _unit(encode([f["ask"][lang] for f in facts])) for lang in languages}
    right = np.arange(len(facts))

    def top1(questions: np.ndarray, memory: np.ndarray) -> np.ndarray:
        return ((questions @ memory.T).argmax(1) == right).astype(np.float64)

    return {lang: top1(ask[lang], store[lang]) if lang == SOURCE_LANGUAGE
            else 0.5 * (top1(ask[lang], store[SOURCE_LANGUAGE]) + top1(ask[SOURCE_LANGUAGE], store[lang]))
            for lang in languages}


def memory_scores(hits: Dict[str, np.ndarray]) -> Scores:
    """``memory_xling`` per language from ``memory_hits``."""
    return {"memory_xling": {lang: float(h.mean()) for lang, h in hits.items()}}


def memory_protocol(encode: Encode, facts: Optional[List[Dict[str, Dict[str, str]]]] = None,
                    languages: Sequence[str] = LANGUAGES) -> Scores:
    """``memory_xling``: top-1 accuracy of finding the stored fact that answers each question."""
    return memory_scores(memory_hits(encode, facts, languages))


def memory_texts(languages: Sequence[str] = LANGUAGES) -> List[str]:
    """Every stored fact and question of the memory retrieval set in ``languages`` (never trained on)."""
    return [f[kind][lang] for f in load_memory_facts() for kind in ("store", "ask") for lang in languages]


def protocol_texts(corpus: Dict[str, List[Tuple[str, str]]], languages: Sequence[str] = LANGUAGES) -> List[str]:
    """Every text the protocols encode (to tokenize ahead, e.g. into a distillation pack)."""
    from rasa_intent_student.routes import load_routes

    texts = [e.text for split in ("train", "dev") for e in load_routes(split, languages)]
    texts += [text for rows in corpus.values() for _, text in rows]
    return texts + memory_texts(languages)


def run_protocols(encode: Encode, corpus: Dict[str, List[Tuple[str, str]]], languages: Sequence[str] = LANGUAGES,
                  hits: Optional[Dict[str, np.ndarray]] = None) -> Scores:
    """All of ``PROTOCOLS`` for one encoder; ``hits``: its ``memory_hits``, where the caller has them already."""
    hits = hits if hits is not None else memory_hits(encode, languages=languages)
    return {**route_protocols(encode, languages), **intent_protocols(encode, corpus), **memory_scores(hits)}


def ratios(student: Scores, teacher: Scores) -> Scores:
    """student / teacher per protocol and language, plus each protocol's ``mean`` (ratio of the means)."""
    out: Scores = {}
    for protocol, scores in student.items():
        ref = teacher.get(protocol, {})
        out[protocol] = {lang: s / ref[lang] for lang, s in scores.items() if ref.get(lang)}
        if scores and ref:
            out[protocol]["mean"] = float(np.mean(list(scores.values())) / np.mean(list(ref.values())))
    return out
