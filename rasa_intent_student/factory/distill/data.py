"""The rows a distillation run trains on: the monolingual corpus plus parallel pairs, tokenized once."""
import random
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

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
