"""Self-attention relation targets of the last layer (MiniLMv2): a layer-wise target beside the embeddings.

The student's last layer starts as the teacher's last layer, with the same heads. For each of its
queries, keys and values ``X`` and each head, the relation ``softmax(X_h X_h^T / sqrt(d_h))`` says how
each token relates to every other; the student's relations are trained towards the teacher's (KL).
The teacher's last-layer queries, keys and values are cached per token (``TokenStates`` of width 3 x dim).
"""
import contextlib
import logging
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence

import numpy as np

from rasa_intent_student.factory.distill.targets import TokenStates, cached_token_states, forward_batches, save_atomically

logger = logging.getLogger(__name__)

PROJECTIONS = ("query", "key", "value")


@contextlib.contextmanager
def last_layer_qkv(model: Any) -> Iterator[Dict[str, "torch.Tensor"]]:
    """While open, the dict holds the last layer's query, key and value projections of the latest forward, (b, t, dim) each."""
    attention = model.encoder.layer[-1].attention.self
    captured: Dict[str, "torch.Tensor"] = {}
    hooks = [getattr(attention, name).register_forward_hook(lambda _m, _i, out, name=name: captured.__setitem__(name, out))
             for name in PROJECTIONS]
    try:
        yield captured
    finally:
        for hook in hooks:
            hook.remove()


def relation_cache_path(sentence_cache: Path) -> Path:
    """The query/key/value cache beside a sentence cache (same key)."""
    return sentence_cache.with_name(sentence_cache.stem.replace("teacher-", "teacher-qkv-") + ".npz")


def teacher_qkv(model: Any, ids: Sequence[List[int]], pad_id: int, sentence_cache: Path) -> TokenStates:
    """The teacher's last-layer queries, keys and values of every token, [q | k | v] float16, cached on disk."""
    lengths = np.array([len(row) for row in ids], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    cache = relation_cache_path(sentence_cache)
    cached = cached_token_states(cache, offsets)
    if cached is not None:
        return cached
    start = time.time()
    states = np.zeros((int(offsets[-1]), 3 * model.config.hidden_size), dtype=np.float16)
    with last_layer_qkv(model) as qkv:
        for chunk, _hidden, _mask in forward_batches(model, ids, pad_id, desc="teacher q/k/v"):
            joined = np.concatenate([qkv[name].float().cpu().numpy() for name in PROJECTIONS], axis=-1)
            for j, row in enumerate(chunk):
                states[offsets[row] : offsets[row + 1]] = joined[j, : lengths[row]]
    save_atomically(cache, lambda path: np.savez(path, states=states, offsets=offsets))
    logger.info("Teacher last-layer q/k/v of %d tokens in %.0f s -> %s", int(offsets[-1]), time.time() - start, cache)
    return TokenStates(states, offsets)


def student_qkv(captured: Dict[str, "torch.Tensor"]) -> "torch.Tensor":
    """[q | k | v] of the latest forward that ``last_layer_qkv`` saw, (b, t, 3 * dim)."""
    import torch

    return torch.cat([captured[name] for name in PROJECTIONS], dim=-1)
