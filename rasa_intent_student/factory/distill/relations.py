"""Self-attention relation targets of the last layer (MiniLMv2): a layer-wise target beside the embeddings.

The student's last layer starts as the teacher's last layer, with the same heads. For each of its
queries, keys and values ``X`` and each head, the relation ``softmax(X_h X_h^T / sqrt(d_h))`` says how
each token relates to every other; the student's relations are trained towards the teacher's (KL).
The teacher's last-layer queries, keys and values are cached per token (``TokenStates`` of width 3 x dim).
"""
import contextlib
from pathlib import Path
from typing import Any, Callable, Dict, Iterator

from rasa_intent_student.factory.distill.targets import TokenCapture

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


def qkv_capture(sentence_cache: Path) -> TokenCapture:
    """The teacher's last-layer queries, keys and values of every token, [q | k | v], cached beside ``sentence_cache``."""

    @contextlib.contextmanager
    def hooks(teacher: Any) -> Iterator[Callable[[], "torch.Tensor"]]:
        with last_layer_qkv(teacher) as captured:
            yield lambda: student_qkv(captured)

    return TokenCapture(relation_cache_path(sentence_cache), hooks)


def student_qkv(captured: Dict[str, "torch.Tensor"]) -> "torch.Tensor":
    """[q | k | v] of the latest forward that ``last_layer_qkv`` saw, (b, t, 3 * dim)."""
    import torch

    return torch.cat([captured[name] for name in PROJECTIONS], dim=-1)
