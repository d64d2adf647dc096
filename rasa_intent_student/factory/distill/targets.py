"""The teacher's targets, cached on disk: sentence embeddings (``.npy``) and per-token states (``.npz``)."""
import contextlib
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, List, Optional, Sequence, Tuple

import numpy as np

logger = logging.getLogger(__name__)


def tokenize(tokenizer_path: Path, texts: Sequence[str], prefix: str, max_seq_length: int) -> List[List[int]]:
    """Token ids of ``prefix + text``, truncated to ``max_seq_length`` (specials included)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_seq_length)
    return [e.ids for e in tokenizer.encode_batch([prefix + t for t in texts])]


def collate(ids: Sequence[List[int]], pad_id: int, device: Any = "cpu") -> Tuple["torch.Tensor", "torch.Tensor"]:
    """(input_ids, attention_mask), int64, padded to the longest row, shape (b, t)."""
    import torch

    width = max(len(row) for row in ids)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return torch.from_numpy(input_ids).to(device), torch.from_numpy(mask).to(device)


def pool(hidden: "torch.Tensor", mask: "torch.Tensor", pooling: str) -> "torch.Tensor":
    """Sentence embeddings (b, dim) from token states (b, t, dim), not normalized."""
    if pooling == "cls":
        return hidden[:, 0]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def forward_batches(model: Any, ids: Sequence[List[int]], pad_id: int, batch_size: int = 64, desc: str = "") -> Iterator[Tuple[List[int], Any, Any]]:
    """(rows, last hidden states (b, t, dim), mask (b, t)) of every batch, batches sorted by length, no grad.

    ``desc``: a progress bar with that label (none when empty).
    """
    import torch
    from tqdm import tqdm

    device = next(model.parameters()).device
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch", disable=not desc):
        chunk = order[start : start + batch_size]
        input_ids, mask = collate([ids[i] for i in chunk], pad_id, device)
        with torch.no_grad():
            hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
        yield chunk, hidden, mask


def embed(model: Any, ids: Sequence[List[int]], pad_id: int, pooling: str, batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """Sentence embeddings, float32 (n, dim), in the order of ``ids``; batches sorted by length."""
    out = np.zeros((len(ids), model.config.hidden_size), dtype=np.float32)
    for chunk, hidden, mask in forward_batches(model, ids, pad_id, batch_size, "embed" if progress else ""):
        out[chunk] = pool(hidden, mask, pooling).float().cpu().numpy()
    return out


def teacher_cache_path(directory: Path, teacher_source: str, prefix: str, pooling: str, max_seq_length: int, texts_hash: str) -> Path:
    """Where the teacher embeddings of one corpus live: the key is in the name."""
    key = hashlib.sha256(json.dumps([teacher_source, prefix, pooling, max_seq_length, texts_hash]).encode()).hexdigest()
    return Path(directory) / f"teacher-{key[:20]}.npy"


class TokenStates:
    """Every text's final-layer token states, flat: ``states[offsets[i]:offsets[i + 1]]`` is text ``i``.

    float16 (about 0.8 KB a token): the whole corpus stays in memory.
    """

    def __init__(self, states: np.ndarray, offsets: np.ndarray):
        self.states, self.offsets = states, offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def subset(self, rows: Sequence[int]) -> "TokenStates":
        """The token states of ``rows`` only, in that order."""
        parts = [self.states[self.offsets[r] : self.offsets[r + 1]] for r in rows]
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
        return TokenStates(np.concatenate(parts) if parts else self.states[:0], offsets)

    def batch(self, rows: Sequence[int], width: int) -> np.ndarray:
        """float32 (b, width, dim), zero past each text's length (those positions are masked)."""
        out = np.zeros((len(rows), width, self.states.shape[1]), dtype=np.float32)
        for i, row in enumerate(rows):
            a, b = self.offsets[row], self.offsets[row + 1]
            out[i, : b - a] = self.states[a:b]
        return out


def token_cache_path(sentence_cache: Path) -> Path:
    """The token-state cache beside a sentence cache (same key)."""
    return sentence_cache.with_name(sentence_cache.stem.replace("teacher-", "teacher-tokens-") + ".npz")


@dataclass(frozen=True)
class TokenCapture:
    """Per-token teacher states that the teacher pass keeps, float16, and the file that caches them.

    ``hooks(model)`` opens forward hooks and yields a function that returns what the latest forward
    captured, (b, t, width); ``None`` keeps the last hidden state.
    """

    cache_file: Path
    hooks: Optional[Callable[[Any], ContextManager[Callable[[], "torch.Tensor"]]]] = None


def token_capture(sentence_cache: Path) -> TokenCapture:
    """The last hidden state of every token (the token target), cached beside ``sentence_cache``."""
    return TokenCapture(token_cache_path(sentence_cache))


def teacher_targets(
    model: Any, ids: Sequence[List[int]], pad_id: int, pooling: str, cache_file: Path, captures: Sequence[TokenCapture] = ()
) -> Tuple[np.ndarray, List[TokenStates]]:
    """The teacher's sentence embeddings (n, dim) and the token states of each of ``captures``, in that order.

    Each is read from its cache (``cache_file``, ``capture.cache_file``) or computed and saved there;
    whatever is missing comes from one pass of the teacher over the texts. ``model`` is only used then.
    """
    offsets = np.concatenate([[0], np.cumsum([len(row) for row in ids])]).astype(np.int64)
    embeddings = _cached_embeddings(cache_file, len(ids))
    found = [cached_token_states(capture.cache_file, offsets) for capture in captures]
    missing = [i for i, states in enumerate(found) if states is None]
    if embeddings is not None and not missing:
        return embeddings, found
    start = time.time()
    computed, states = _teacher_pass(model, ids, pad_id, pooling, offsets, embeddings is None, [captures[i] for i in missing])
    if computed is not None:
        save_atomically(cache_file, lambda path: np.save(path, computed))
        embeddings = computed
    for i, flat in zip(missing, states):
        save_atomically(captures[i].cache_file, lambda path: np.savez(path, states=flat, offsets=offsets))
        found[i] = TokenStates(flat, offsets)
    logger.info("Teacher targets of %d texts (%d tokens, %d token caches) in %.0f s -> %s",
                len(ids), int(offsets[-1]), len(missing), time.time() - start, cache_file.parent)
    return embeddings, found


def _teacher_pass(
    model: Any, ids: Sequence[List[int]], pad_id: int, pooling: str, offsets: np.ndarray, with_embeddings: bool,
    captures: Sequence[TokenCapture],
) -> Tuple[Optional[np.ndarray], List[np.ndarray]]:
    """One forward pass over ``ids``: sentence embeddings (when asked) and the flat float16 states of each capture."""
    embeddings = np.zeros((len(ids), model.config.hidden_size), dtype=np.float32) if with_embeddings else None
    states: List[Optional[np.ndarray]] = [None] * len(captures)
    with contextlib.ExitStack() as stack:
        latest = [stack.enter_context(c.hooks(model)) if c.hooks else None for c in captures]
        for chunk, hidden, mask in forward_batches(model, ids, pad_id, desc="teacher"):
            if embeddings is not None:
                embeddings[chunk] = pool(hidden, mask, pooling).float().cpu().numpy()
            for k, get in enumerate(latest):
                captured = (hidden if get is None else get()).float().cpu().numpy()
                if states[k] is None:
                    states[k] = np.zeros((int(offsets[-1]), captured.shape[-1]), dtype=np.float16)
                for j, row in enumerate(chunk):
                    states[k][offsets[row] : offsets[row + 1]] = captured[j, : offsets[row + 1] - offsets[row]]
    return embeddings, [np.zeros((0, 0), dtype=np.float16) if s is None else s for s in states]  # None: no texts


@contextlib.contextmanager
def layer_output(model: Any, index: int) -> Iterator[Callable[[], "torch.Tensor"]]:
    """While open, the yielded function returns the hidden states (b, t, dim) that ``model.encoder.layer[index]``
    put out in the latest forward."""
    captured = {}

    def keep(_module: Any, _inputs: Any, out: Any) -> None:
        captured["states"] = out[0] if isinstance(out, tuple) else out

    hook = model.encoder.layer[index].register_forward_hook(keep)
    try:
        yield lambda: captured["states"]
    finally:
        hook.remove()


def _cached_embeddings(cache_file: Path, n: int) -> Optional[np.ndarray]:
    if not cache_file.is_file():
        return None
    cached = np.load(cache_file)
    if cached.shape[0] == n:
        logger.info("Teacher embeddings from cache %s", cache_file)
        return cached
    logger.warning("Cache %s has %d rows for %d texts; recomputing.", cache_file, cached.shape[0], n)
    return None


def cached_token_states(cache_file: Path, offsets: np.ndarray) -> Optional[TokenStates]:
    if not cache_file.is_file():
        return None
    with np.load(cache_file) as cached:
        if np.array_equal(cached["offsets"], offsets):
            logger.info("Teacher token states from cache %s", cache_file.name)
            return TokenStates(cached["states"], offsets)
    logger.warning("Cache %s does not match the %d texts; recomputing.", cache_file, len(offsets) - 1)
    return None


def save_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a partial file and rename it: a cache is never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.stem + ".partial" + path.suffix)
    write(partial)
    partial.replace(path)
