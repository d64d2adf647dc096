"""Pooling and normalization in numpy."""
import numpy as np


def mean_pooling(token_embeddings: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Average token vectors where the mask is 1.

    Args:
        token_embeddings: float array of shape (n, seq, dim).
        attention_mask: int array of shape (n, seq).

    Returns:
        float32 array of shape (n, dim).
    """
    mask = attention_mask[..., None].astype(np.float32)  # (n, seq, 1)
    summed = (token_embeddings * mask).sum(axis=1)
    counts = np.clip(mask.sum(axis=1), 1e-9, None)
    return (summed / counts).astype(np.float32)


def cls_pooling(token_embeddings: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Take the first token's vector. Returns float32 array of shape (n, dim)."""
    del attention_mask  # the first token is always real
    return token_embeddings[:, 0].astype(np.float32)


def normalize(vectors: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """L2-normalize rows; zero rows stay zero. Returns float32, same shape."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, eps)).astype(np.float32)


POOLERS = {"mean": mean_pooling, "cls": cls_pooling}
