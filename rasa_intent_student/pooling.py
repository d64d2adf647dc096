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


def normalize(vectors: np.ndarray, eps: float = 1e-12, copy: bool = True) -> np.ndarray:
    """L2-normalize rows; zero rows stay zero.

    Returns:
        float32 array of the same shape: a new one, or with ``copy=False`` and float32
        input, ``vectors`` itself, normalized in place.
    """
    if copy or not isinstance(vectors, np.ndarray) or vectors.dtype != np.float32:
        vectors = np.array(vectors, dtype=np.float32)
    norms = np.sqrt(np.add.reduce(vectors * vectors, axis=-1, keepdims=True))
    np.maximum(norms, eps, out=norms)
    vectors /= norms
    return vectors


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each row of ``a`` with the same row of ``b`` (shapes (..., dim)); returns shape (...)."""
    return (normalize(a) * normalize(b)).sum(axis=-1)


def centre(vectors: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Subtract a mean vector from each row, then L2-normalize the rows.

    Sentence embeddings of one encoder share a common direction (for the default
    student, raw cosines of unrelated sentences sit around 0.84). Subtracting the
    mean embedding of a reference set removes it, so that the cosine of centred
    vectors is about 0 for an average pair of texts and clearly positive for related
    ones. Use the mean of a broad sample of the texts you compare, or
    ``StudentEncoder.reference_mean()`` (a fixed multilingual sample of the package's
    route examples); ``StudentEncoder.similarity(a, b, centre=True)`` does both steps.

    Args:
        vectors: float array of shape (n, dim) or (dim,).
        mean: float array of shape (dim,).

    Returns:
        float32 array of the shape of ``vectors``: unit rows (a row equal to the mean becomes zeros).
    """
    vectors, mean = np.asarray(vectors, dtype=np.float32), np.asarray(mean, dtype=np.float32)
    if mean.shape != vectors.shape[-1:]:
        raise ValueError(f"mean has shape {mean.shape}; it must be ({vectors.shape[-1]},), the vectors' dim.")
    return normalize(vectors - mean)


POOLERS = {"mean": mean_pooling, "cls": cls_pooling}
