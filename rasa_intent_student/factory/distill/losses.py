"""Distillation losses on sentence embeddings (torch)."""
from typing import TYPE_CHECKING, Dict, Optional

if TYPE_CHECKING:
    import torch

    from rasa_intent_student.factory.distill.config import DistillConfig


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


def distill_loss(
    student: "torch.Tensor",
    teacher: "torch.Tensor",
    config: "DistillConfig",
    translated: Optional["torch.Tensor"] = None,
    source_targets: Optional["torch.Tensor"] = None,
) -> Dict[str, "torch.Tensor"]:
    """The weighted loss of one batch and its parts, averaged over the Matryoshka prefixes.

    Args:
        student, teacher: (b, dim) embeddings of the same texts.
        translated: indices of the batch rows that are translations (may be empty).
        source_targets: (len(translated), dim) teacher embeddings of their English sources.

    Returns:
        {"loss", "mse", "pair", "xling"}.
    """
    import torch

    dims = config.matryoshka_dims or (student.shape[-1],)
    mse = sum(embedding_mse(student[:, :d], teacher[:, :d]) for d in dims) / len(dims)
    pair = sum(pairwise_cosine_loss(student[:, :d], teacher[:, :d]) for d in dims) / len(dims)
    xling = torch.zeros((), device=student.device)
    if translated is not None and len(translated) and config.xling_weight > 0:
        rows = student[translated]
        xling = sum(embedding_mse(rows[:, :d], source_targets[:, :d]) for d in dims) / len(dims)
    loss = config.mse_weight * mse + config.pair_weight * pair + config.xling_weight * xling
    return {"loss": loss, "mse": mse, "pair": pair, "xling": xling}
