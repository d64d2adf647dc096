"""The rows a distillation run trains on: the monolingual corpus plus parallel pairs, tokenized once."""
import random
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Set, Tuple

import numpy as np

from rasa_intent_student.factory.corpus import CorpusConfig, CorpusText, build_corpus, corpus_manifest, django_root, evaluation_texts, fold
from rasa_intent_student.errors import StudentError


@dataclass
class TrainingSet:
    """Texts with their language and origin; a translation row also points at its English source row.

    Attributes:
        rows: the texts, as ``CorpusText`` (text, lang, source).
        source_index: int64 (n,): the row of a translation's English source, -1 for other rows.
        pair_origin: the parallel source ("dialogue", "django") of each translation row, "" for others.
    """

    rows: List[CorpusText]
    source_index: np.ndarray
    pair_origin: List[str]

    @property
    def texts(self) -> List[str]:
        return [row.text for row in self.rows]

    def translation_rows(self, origins: Sequence[str]) -> np.ndarray:
        """Bool (n,): rows that are translations from one of ``origins``."""
        return np.array([o in origins for o in self.pair_origin], dtype=bool) & (self.source_index >= 0)

    def manifest(self, config: CorpusConfig) -> Dict[str, object]:
        """Counts per language and source, the config and the hash of all texts (the teacher-cache key)."""
        out = corpus_manifest(self.rows, config)
        out["parallel_pairs"] = dict(sorted(Counter(o for o in self.pair_origin if o).items()))
        return out


def build_training_set(config: CorpusConfig) -> TrainingSet:
    """The monolingual corpus, then every parallel pair: its English source and its translation as rows.

    A text already in the corpus is not added twice; a translation that is there gets its source pointer.
    """
    from rasa_intent_student.factory.parallel import dialogue_dirs, dialogue_pairs, django_pairs, drop_banned

    rows: List[CorpusText] = list(build_corpus(config))
    where: Dict[Tuple[str, str], int] = {(row.lang, fold(row.text)): i for i, row in enumerate(rows)}
    banned = evaluation_texts(config)
    pairs = []
    directories = dialogue_dirs(config.parallel_sources)
    if directories:
        pairs += dialogue_pairs(config.languages, directories)
    if "django" in config.parallel_sources:
        pairs += django_pairs(config.languages, django_root(), config.django_pairs_per_language, config.seed)
    if pairs and "en" not in config.languages:
        raise StudentError("Parallel pairs need English (their source language) among the corpus languages; add 'en'.")

    def row_of(text: str, lang: str, source: str) -> int:
        key = (lang, fold(text))
        if key not in where:
            where[key] = len(rows)
            rows.append(CorpusText(text, lang, source))
        return where[key]

    links: Dict[int, Tuple[int, str]] = {}
    for pair in drop_banned(pairs, banned):
        source = row_of(pair.source, "en", f"{pair.origin}-en")
        translation = row_of(pair.text, pair.lang, pair.origin)
        links.setdefault(translation, (source, pair.origin))
    source_index = np.full(len(rows), -1, dtype=np.int64)
    origin = [""] * len(rows)
    for translation, (source, name) in links.items():
        source_index[translation], origin[translation] = source, name
    return TrainingSet(rows, source_index, origin)


@dataclass
class RouteSet:
    """Tokenized route TRAIN examples for the route-aware term: ``ids[i]`` is a ``names[labels[i]]`` example."""

    ids: List[List[int]]
    labels: np.ndarray
    names: List[str]

    def batch(self, size: int, seed: int, step: int) -> np.ndarray:
        """``size // len(names)`` examples of each route: a different draw each step, the same one on ``--resume``."""
        rng = random.Random(seed * 1_000_003 + step)
        per_route = size // len(self.names)
        drawn: List[int] = []
        for label in range(len(self.names)):
            members = np.nonzero(self.labels == label)[0].tolist()
            drawn += rng.sample(members, per_route) if len(members) >= per_route else rng.choices(members, k=per_route)
        return np.array(drawn)


def route_training_set(root: str, languages: Sequence[str], tokenize_texts: Callable[[List[str]], List[List[int]]],
                       batch_size: int) -> RouteSet:
    """The route TRAIN split of ``languages`` under ``root`` (never the dev split), tokenized by ``tokenize_texts``."""
    from rasa_intent_student.routes import load_routes

    examples = load_routes("train", languages, root)
    names = sorted({e.label for e in examples})
    if batch_size // len(names) < 2:
        raise StudentError(f"route_batch_size={batch_size} gives fewer than 2 examples of each of the {len(names)} routes "
                           f"{names}; use at least {2 * len(names)}.")
    return RouteSet(tokenize_texts([e.text for e in examples]), np.array([names.index(e.label) for e in examples]), names)


@dataclass
class MemorySet:
    """Tokenized memory pairs for the memory term: ``ids[store[p, j]]`` is pair ``p``'s fact in ``languages[j]``,
    ``ids[ask[p, j]]`` its question."""

    ids: List[List[int]]
    store: np.ndarray
    ask: np.ndarray
    languages: List[str]

    def batch(self, size: int, seed: int, step: int) -> Tuple[np.ndarray, np.ndarray]:
        """(facts, questions): ``size`` distinct pairs, each fact and question in a language drawn at random
        (mostly two different ones: stored in one, asked in another); a different draw each step, the same on ``--resume``."""
        rng = np.random.default_rng(seed * 1_000_003 + step)
        pairs = rng.choice(len(self.store), size=min(size, len(self.store)), replace=False)
        stored_in, asked_in = (rng.integers(len(self.languages), size=len(pairs)) for _ in range(2))
        return self.store[pairs, stored_in], self.ask[pairs, asked_in]


def memory_training_set(languages: Sequence[str], tokenize_texts: Callable[[List[str]], List[List[int]]],
                        banned: Set[str]) -> MemorySet:
    """The memory pairs (``parallel.memory_pairs``) in ``languages``, tokenized by ``tokenize_texts``; a pair with a
    text in ``banned`` (folded texts the benchmark scores on) is left out."""
    from rasa_intent_student.factory.parallel import memory_pairs

    kept = [pair for pair in memory_pairs()
            if not any(fold(side[lang]) in banned for side in pair for lang in languages)]
    texts = [side[lang] for pair in kept for side in pair for lang in languages]
    n = len(languages)
    index = np.arange(len(texts)).reshape(len(kept), 2, n)
    return MemorySet(tokenize_texts(texts), index[:, 0], index[:, 1], list(languages))


def ranking_keys(batch: Sequence[int], source_of: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The keys of the translation-ranking term for one batch, and which keys each translation should find.

    Keys are the batch's rows plus the sources of its translations. A key is a positive for translation
    ``i`` when it is ``i``'s source or another translation of that source (``i`` itself included): texts
    that mean the same are never pushed apart.

    Args:
        batch: corpus rows of the batch.
        source_of: (n,) each row's English source row, -1 for rows without the translation target.

    Returns:
        (key_rows (k,), positives bool (q, k)) where q counts the batch's translations in batch order.
    """
    batch = np.asarray(batch)
    sources = source_of[batch][source_of[batch] >= 0]
    key_rows = np.unique(np.concatenate([batch, sources]))
    key_sources = source_of[key_rows]
    positives = (key_rows[None, :] == sources[:, None]) | (key_sources[None, :] == sources[:, None])
    return key_rows, positives


def split_indices(n: int, eval_fraction: float, seed: int) -> Tuple[List[int], List[int]]:
    """(train, held-out) indices of a corpus of ``n`` texts."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_eval = max(1, int(round(n * eval_fraction)))
    return sorted(order[n_eval:]), sorted(order[:n_eval])


def epoch_batches(train: Sequence[int], lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> List[List[int]]:
    """One epoch of batches: shuffled, grouped by similar length (less padding), batch order shuffled."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(train)
    rng.shuffle(order)
    group = batch_size * 50
    batches = []
    for start in range(0, len(order), group):
        chunk = sorted(order[start : start + group], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return [b for b in batches if len(b) == batch_size]  # equal batches: comparable pairwise losses


def same_language_neighbours(targets: np.ndarray, rows: Sequence[int], langs: Sequence[str], k: int) -> np.ndarray:
    """(len(rows), k): for each of ``rows``, the ``k`` other rows of its language nearest by the teacher's cosine.

    Nearest first; a language with fewer than ``k + 1`` texts repeats its nearest ones.
    """
    rows = np.asarray(rows)
    out = np.empty((len(rows), k), dtype=np.int64)
    by_lang: Dict[str, List[int]] = {}
    for position, row in enumerate(rows):
        by_lang.setdefault(langs[row], []).append(position)
    for positions in by_lang.values():
        members = rows[positions]
        emb = targets[members]
        emb = emb / np.linalg.norm(emb, axis=1, keepdims=True).clip(min=1e-12)
        sims = emb @ emb.T
        np.fill_diagonal(sims, -np.inf)
        kept = min(k, len(members) - 1)
        if kept < 1:  # a language with one text: it is its own neighbour
            out[positions] = members[:, None]
            continue
        nearest = np.argpartition(-sims, kept - 1, axis=1)[:, :kept]
        nearest = np.take_along_axis(nearest, np.argsort(-np.take_along_axis(sims, nearest, axis=1), axis=1), axis=1)
        out[positions] = members[nearest[:, np.arange(k) % kept]]
    return out


def neighbour_batches(
    train: Sequence[int], neighbours: np.ndarray, lengths: Sequence[int], batch_size: int, seed: int, epoch: int
) -> List[List[int]]:
    """One epoch of batches: each training text, drawn once, followed by its neighbours not yet in its batch.

    ``neighbours`` is ``same_language_neighbours`` of ``train`` (one row per training text). As in
    ``epoch_batches``, drawn texts are sorted by length within groups of about 50 batches (less padding) and
    the batch order is shuffled.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(train)))
    rng.shuffle(order)
    group = max(1, batch_size * 50 // (1 + neighbours.shape[1]))
    order = [i for start in range(0, len(order), group)
             for i in sorted(order[start : start + group], key=lambda i: lengths[train[i]])]
    batches: List[List[int]] = []
    batch: List[int] = []
    for i in order:
        for row in (int(train[i]), *map(int, neighbours[i])):
            if row in batch:
                continue
            batch.append(row)
            if len(batch) == batch_size:
                batches.append(batch)
                batch = []
    rng.shuffle(batches)
    return batches  # the last, partial batch is dropped: equal batches give comparable pairwise losses
