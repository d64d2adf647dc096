"""Trainable word embeddings for the tokens the corpus uses: a learned delta on the frozen teacher rows.

The student has two layers where the teacher has twelve; what the ten missing layers did to bring a
word and its translation together must now happen somewhere, and a word's own embedding is the
cheapest place. The full 250k-row table stays frozen (pruning follows, and the optimizer stays
small); only the rows of tokens seen often enough in the corpus get a trainable delta, and
``merge_delta`` folds it back into an ordinary embedding table before the student is saved.
"""
from collections import Counter
from typing import Any, Dict, Iterable, List, Sequence

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

TOKENS_KEY = "embeddings.word_embeddings.token_ids"  # where a checkpoint keeps which rows the delta covers
DELTA_KEY = "embeddings.word_embeddings.delta"


class DeltaEmbedding(nn.Module):
    """``base(ids) + delta[slot(ids)]``: the frozen table plus a trainable delta for ``token_ids`` only."""

    def __init__(self, base: nn.Embedding, token_ids: Sequence[int]):
        super().__init__()
        self.base = base
        ids = torch.as_tensor(sorted(set(int(i) for i in token_ids)), dtype=torch.long)
        slot = torch.zeros(base.num_embeddings, dtype=torch.long)
        slot[ids] = torch.arange(1, len(ids) + 1)  # slot 0: every other token, a zero row that never trains
        self.register_buffer("token_ids", ids)
        self.register_buffer("slot", slot, persistent=False)
        self.delta = nn.Parameter(torch.zeros(len(ids) + 1, base.embedding_dim))

    @property
    def weight(self) -> torch.Tensor:
        """The merged table (what ``get_input_embeddings().weight`` readers expect)."""
        return merged_weight(self)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.base(input_ids) + F.embedding(self.slot[input_ids], self.delta, padding_idx=0)


def merged_weight(module: DeltaEmbedding) -> torch.Tensor:
    """The frozen table with the delta added to its trained rows."""
    weight = module.base.weight.detach().clone()
    weight[module.token_ids] += module.delta.detach()[1:].to(weight.dtype)
    return weight


def frequent_tokens(ids: Iterable[Sequence[int]], min_count: int) -> List[int]:
    """Token ids occurring at least ``min_count`` times in ``ids`` (rare ones would fit their few contexts)."""
    counts = Counter(i for row in ids for i in row)
    return sorted(i for i, n in counts.items() if n >= min_count)


def add_delta(student: Any, token_ids: Sequence[int]) -> Any:
    """Give ``student`` a trainable delta on the rows ``token_ids`` (in place; returns it)."""
    base = student.get_input_embeddings()
    base.weight.requires_grad_(False)
    student.set_input_embeddings(DeltaEmbedding(base, token_ids))
    return student


def merge_delta(student: Any) -> Any:
    """Fold a ``DeltaEmbedding`` back into a plain ``nn.Embedding`` (no-op without one); returns ``student``."""
    module = student.get_input_embeddings()
    if isinstance(module, DeltaEmbedding):
        plain = nn.Embedding(module.base.num_embeddings, module.base.embedding_dim, padding_idx=module.base.padding_idx)
        plain.weight = nn.Parameter(merged_weight(module), requires_grad=False)
        student.set_input_embeddings(plain)
    return student


def fold_earlier_delta(student: Any, state: Dict[str, Any]) -> Dict[str, Any]:
    """Add an earlier run's trained delta (in ``state``) to ``student``'s frozen table; returns ``state`` without it.

    A second stage may train on another corpus, whose frequent tokens differ from the first's: folding
    the first delta into the base lets the new delta start at zero on any rows (with no weight decay on
    the delta this trains exactly as continuing the old one would).
    """
    tokens = delta_tokens(state)
    rest = {k: v for k, v in state.items() if k not in (DELTA_KEY, TOKENS_KEY)}
    if not len(tokens):
        return rest
    module = student.get_input_embeddings()
    base = module.base if isinstance(module, DeltaEmbedding) else module
    with torch.no_grad():
        base.weight[torch.from_numpy(tokens)] += state[DELTA_KEY][1:].to(base.weight.dtype)
    return rest


def delta_tokens(state: Dict[str, Any]) -> np.ndarray:
    """The token ids a saved trainable state's delta covers (empty when it has none)."""
    tokens = state.get(TOKENS_KEY)
    return np.asarray(tokens.cpu() if tokens is not None else [], dtype=np.int64)

