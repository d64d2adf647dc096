"""The teacher's targets, cached on disk: sentence embeddings (``.npy``) and final token states (``.npz``)."""
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, List, Sequence, Tuple

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


def embed(model: Any, ids: Sequence[List[int]], pad_id: int, pooling: str, batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """Sentence embeddings, float32 (n, dim), in the order of ``ids``; batches sorted by length."""
    import torch
    from tqdm import tqdm

    device = next(model.parameters()).device
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = np.zeros((len(ids), model.config.hidden_size), dtype=np.float32)
    with torch.no_grad():
        for start in tqdm(range(0, len(order), batch_size), desc="embed", unit="batch", disable=not progress):
            chunk = order[start : start + batch_size]
            input_ids, mask = collate([ids[i] for i in chunk], pad_id, device)
            hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
            out[chunk] = pool(hidden, mask, pooling).float().cpu().numpy()
    return out


def teacher_cache_path(directory: Path, teacher_source: str, prefix: str, pooling: str, max_seq_length: int, texts_hash: str) -> Path:
    """Where the teacher embeddings of one corpus live: the key is in the name."""
    key = hashlib.sha256(json.dumps([teacher_source, prefix, pooling, max_seq_length, texts_hash]).encode()).hexdigest()
    return Path(directory) / f"teacher-{key[:20]}.npy"


def teacher_embeddings(teacher_model: Any, ids: Sequence[List[int]], pad_id: int, pooling: str, cache_file: Path) -> np.ndarray:
    """The teacher's sentence embeddings (n, dim): read from ``cache_file`` or computed and saved there."""
    if cache_file.is_file():
        cached = np.load(cache_file)
        if cached.shape[0] == len(ids):
            logger.info("Teacher embeddings from cache %s", cache_file)
            return cached
        logger.warning("Cache %s has %d rows for %d texts; recomputing.", cache_file, cached.shape[0], len(ids))
    start = time.time()
    out = embed(teacher_model, ids, pad_id, pooling, progress=True)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    partial = cache_file.with_suffix(".partial.npy")
    np.save(partial, out)
    partial.replace(cache_file)  # never leave a half-written cache
    logger.info("Teacher embedded %d texts in %.0f s -> %s", len(ids), time.time() - start, cache_file)
    return out


class TokenStates:
    """Every text's final-layer token states, flat: ``states[offsets[i]:offsets[i + 1]]`` is text ``i``.

    float16 (about 0.8 KB a token): the whole corpus stays in memory.
    """

    def __init__(self, states: np.ndarray, offsets: np.ndarray):
        self.states, self.offsets = states, offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

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


def teacher_token_states(model: Any, ids: Sequence[List[int]], pad_id: int, cache_file: Path, batch_size: int = 64) -> TokenStates:
    """The teacher's last hidden states of every token: read from ``cache_file`` or computed and saved there."""
    import torch
    from tqdm import tqdm

    lengths = np.array([len(row) for row in ids], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    if cache_file.is_file():
        with np.load(cache_file) as cached:
            if np.array_equal(cached["offsets"], offsets):
                logger.info("Teacher token states from cache %s", cache_file)
                return TokenStates(cached["states"], offsets)
        logger.warning("Cache %s does not match the %d texts; recomputing.", cache_file, len(ids))
    start = time.time()
    device = next(model.parameters()).device
    states = np.zeros((int(offsets[-1]), model.config.hidden_size), dtype=np.float16)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    with torch.no_grad():
        for begin in tqdm(range(0, len(order), batch_size), desc="teacher tokens", unit="batch"):
            chunk = order[begin : begin + batch_size]
            input_ids, mask = collate([ids[i] for i in chunk], pad_id, device)
            hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state.float().cpu().numpy()
            for j, row in enumerate(chunk):
                states[offsets[row] : offsets[row + 1]] = hidden[j, : lengths[row]]
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    partial = cache_file.with_name(cache_file.stem + ".partial.npz")
    np.savez(partial, states=states, offsets=offsets)
    partial.replace(cache_file)  # never leave a half-written cache
    logger.info("Teacher token states of %d texts (%d tokens) in %.0f s -> %s", len(ids), len(states), time.time() - start, cache_file)
    return TokenStates(states, offsets)
