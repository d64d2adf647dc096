"""Distill the pruned student (teacher layers [0, 11]) back towards the teacher's sentence embeddings.

The e5-small-distill recipe: per batch, the MSE between the student's and the
teacher's L2-normalized sentence embeddings plus the MSE between their in-batch
pairwise cosine similarities, optionally at several Matryoshka prefixes of the
dimensions. Teacher embeddings are computed once and cached as ``.npy``, keyed
by teacher, prefix, pooling, max_seq_length and corpus hash. CPU only.
"""
import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from rasa_intent_student.constants import (
    DEFAULT_LAYERS_KEPT,
    DISTILL_MAX_SEQ_LENGTH,
    DISTILL_OUTPUT_DIR,
    E5_OFFLINE_TEACHER,
)
from rasa_intent_student.factory.corpus import CorpusConfig, CorpusText, build_corpus, corpus_hash, corpus_manifest, save_corpus

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "ckpt.pt"
CORPUS_FILE = "corpus.jsonl"
CORPUS_MANIFEST_FILE = "corpus_manifest.json"
HISTORY_FILE = "history.json"
STUDENT_DIR = "student-st"  # the distilled FP32 student, a sentence-transformers directory
CACHE_DIR = "teacher-cache"


@dataclass
class DistillConfig:
    """One distillation run (stored in every checkpoint).

    Attributes:
        output: run directory: corpus + manifest, teacher cache, checkpoint, distilled student.
        teacher: ``e5-small-offline`` or a sentence-transformers directory.
        layers: teacher layers the student starts from.
        max_seq_length: tokens per text (corpus texts are short).
        batch_size, max_steps, lr, warmup_steps, weight_decay, grad_clip: the optimisation.
        mse_weight, pair_weight: weights of the embedding MSE and the pairwise-cosine loss.
        matryoshka_dims: prefixes of the embedding the losses are averaged over (() = full dim only).
        eval_fraction: share of the corpus held out for evaluation.
        eval_interval: steps between evaluations (and checkpoints).
        threads: torch CPU threads.
        max_minutes: stop (and checkpoint) after this wall time, whatever max_steps says.
        seed: data order, held-out split, corpus n-grams.
        corpus: what goes into the corpus.
    """

    output: str = str(DISTILL_OUTPUT_DIR)
    teacher: str = E5_OFFLINE_TEACHER
    layers: Tuple[int, ...] = DEFAULT_LAYERS_KEPT
    max_seq_length: int = DISTILL_MAX_SEQ_LENGTH
    batch_size: int = 32
    max_steps: int = 2000
    lr: float = 3e-4
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    mse_weight: float = 1.0
    pair_weight: float = 1.0
    matryoshka_dims: Tuple[int, ...] = ()
    eval_fraction: float = 0.02
    eval_interval: int = 250
    threads: int = 2
    max_minutes: float = 0.0
    seed: int = 0
    corpus: CorpusConfig = field(default_factory=CorpusConfig)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "DistillConfig":
        """Inverse of ``asdict`` (tuples restored), as stored in checkpoints."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown DistillConfig keys {unknown}. Valid keys: {sorted(known)}.")
        values = dict(data)
        values["corpus"] = CorpusConfig(**{**data.get("corpus", {}), "languages": tuple(data.get("corpus", {}).get("languages", CorpusConfig().languages))})
        for key in ("layers", "matryoshka_dims"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


# --- losses ------------------------------------------------------------------------------------


def embedding_mse(student: "torch.Tensor", teacher: "torch.Tensor") -> "torch.Tensor":
    """Mean over the batch of the squared distance between L2-normalized embeddings (= 2 - 2 cos)."""
    import torch.nn.functional as F

    return (F.normalize(student, dim=-1) - F.normalize(teacher, dim=-1)).pow(2).sum(-1).mean()


def pairwise_cosine_loss(student: "torch.Tensor", teacher: "torch.Tensor") -> "torch.Tensor":
    """MSE between the in-batch cosine-similarity matrices of student and teacher, shape (b, b).

    Zero when both give the same similarities (e.g. identical embeddings), positive otherwise.
    """
    import torch.nn.functional as F

    s, t = F.normalize(student, dim=-1), F.normalize(teacher, dim=-1)
    return (s @ s.T - t @ t.T).pow(2).mean()


def distill_loss(student: "torch.Tensor", teacher: "torch.Tensor", config: DistillConfig) -> Dict[str, "torch.Tensor"]:
    """``loss`` = mean over Matryoshka prefixes of mse_weight * MSE + pair_weight * pairwise loss."""
    dims = config.matryoshka_dims or (student.shape[-1],)
    mse = sum(embedding_mse(student[:, :d], teacher[:, :d]) for d in dims) / len(dims)
    pair = sum(pairwise_cosine_loss(student[:, :d], teacher[:, :d]) for d in dims) / len(dims)
    return {"loss": config.mse_weight * mse + config.pair_weight * pair, "mse": mse, "pair": pair}


# --- tokens, pooling, teacher cache ------------------------------------------------------------


def tokenize(tokenizer_path: Path, texts: Sequence[str], prefix: str, max_seq_length: int) -> List[List[int]]:
    """Token ids of ``prefix + text``, truncated to ``max_seq_length`` (specials included)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_seq_length)
    return [e.ids for e in tokenizer.encode_batch([prefix + t for t in texts])]


def collate(ids: Sequence[List[int]], pad_id: int) -> Tuple["torch.Tensor", "torch.Tensor"]:
    """(input_ids, attention_mask), int64, padded to the longest row, shape (b, t)."""
    import torch

    width = max(len(row) for row in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return input_ids, mask


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

    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = np.zeros((len(ids), model.config.hidden_size), dtype=np.float32)
    starts = range(0, len(order), batch_size)
    with torch.no_grad():
        for start in tqdm(starts, desc="teacher", unit="batch", disable=not progress):
            chunk = order[start : start + batch_size]
            input_ids, mask = collate([ids[i] for i in chunk], pad_id)
            hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
            out[chunk] = pool(hidden, mask, pooling).numpy()
    return out


def teacher_cache_path(directory: Path, teacher_source: str, prefix: str, pooling: str, max_seq_length: int, texts_hash: str) -> Path:
    """Where the teacher embeddings of one corpus live: the key is in the name."""
    import hashlib

    key = hashlib.sha256(json.dumps([teacher_source, prefix, pooling, max_seq_length, texts_hash]).encode()).hexdigest()
    return Path(directory) / f"teacher-{key[:20]}.npy"


def teacher_embeddings(
    teacher_model: Any,
    ids: Sequence[List[int]],
    pad_id: int,
    pooling: str,
    cache_file: Path,
) -> np.ndarray:
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
    np.save(cache_file, out)
    logger.info("Teacher embedded %d texts in %.0f s -> %s", len(ids), time.time() - start, cache_file)
    return out
