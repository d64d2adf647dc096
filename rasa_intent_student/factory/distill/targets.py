"""The teacher's targets, cached on disk: sentence embeddings (``.npy``) and per-token states (``.npz``)."""
import contextlib
import hashlib
import json
import logging
import time
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


def teacher_targets(
    model: Any, ids: Sequence[List[int]], pad_id: int, pooling: str, cache_file: Path, with_tokens: bool = False
) -> Tuple[np.ndarray, Optional[TokenStates]]:
    """The teacher's sentence embeddings (n, dim) and, with ``with_tokens``, its token states.

    Each is read from its cache (``cache_file`` and ``token_cache_path(cache_file)``) or computed and
    saved there; what is missing comes from one pass of the teacher over the texts.
    """
    lengths = np.array([len(row) for row in ids], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    token_file = token_cache_path(cache_file)
    embeddings, tokens = _cached_embeddings(cache_file, len(ids)), None
    if with_tokens:
        tokens = cached_token_states(token_file, offsets)
    if embeddings is not None and (tokens is not None or not with_tokens):
        return embeddings, tokens

    start = time.time()
    dim = model.config.hidden_size
    new_embeddings = np.zeros((len(ids), dim), dtype=np.float32) if embeddings is None else None
    states = np.zeros((int(offsets[-1]), dim), dtype=np.float16) if with_tokens and tokens is None else None
    for chunk, hidden, mask in forward_batches(model, ids, pad_id, desc="teacher"):
        if new_embeddings is not None:
            new_embeddings[chunk] = pool(hidden, mask, pooling).float().cpu().numpy()
        if states is not None:
            hidden = hidden.float().cpu().numpy()
            for j, row in enumerate(chunk):
                states[offsets[row] : offsets[row + 1]] = hidden[j, : lengths[row]]
    if new_embeddings is not None:
        save_atomically(cache_file, lambda path: np.save(path, new_embeddings))
        embeddings = new_embeddings
    if states is not None:
        save_atomically(token_file, lambda path: np.savez(path, states=states, offsets=offsets))
        tokens = TokenStates(states, offsets)
    logger.info("Teacher targets of %d texts (%d tokens) in %.0f s -> %s", len(ids), int(offsets[-1]), time.time() - start, cache_file.parent)
    return embeddings, tokens


def cached_capture(
    model: Any, ids: Sequence[List[int]], pad_id: int, cache_file: Path,
    capture: Callable[[Any], ContextManager[Callable[[], "torch.Tensor"]]], desc: str,
) -> TokenStates:
    """Per-token teacher states that a forward hook captures, float16, read from ``cache_file`` or computed and saved there.

    ``capture(model)`` opens the hooks and yields a function that returns what the latest forward
    captured, (b, t, width). ``model`` is only used when the cache does not answer.
    """
    lengths = np.array([len(row) for row in ids], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    cached = cached_token_states(cache_file, offsets)
    if cached is not None:
        return cached
    start = time.time()
    states = None
    with capture(model) as latest:
        for chunk, _hidden, _mask in forward_batches(model, ids, pad_id, desc=desc):
            captured = latest().float().cpu().numpy()
            if states is None:
                states = np.zeros((int(offsets[-1]), captured.shape[-1]), dtype=np.float16)
            for j, row in enumerate(chunk):
                states[offsets[row] : offsets[row + 1]] = captured[j, : lengths[row]]
    states = np.zeros((0, 0), dtype=np.float16) if states is None else states  # no texts
    save_atomically(cache_file, lambda path: np.savez(path, states=states, offsets=offsets))
    logger.info("Teacher %s of %d tokens in %.0f s -> %s", desc, int(offsets[-1]), time.time() - start, cache_file)
    return TokenStates(states, offsets)


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
