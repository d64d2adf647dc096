"""Distillation losses on sentence embeddings, token states and attention relations (torch)."""
import math
from functools import partial
from typing import TYPE_CHECKING, Dict, Optional, Tuple

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


def neighbourhood_loss(student: "torch.Tensor", teacher: "torch.Tensor", temperature: float) -> "torch.Tensor":
    """KL(teacher || student) of each text's softmax over the batch's other texts by ``cosine / temperature``.

    The pairwise MSE weighs every pair alike, and e5's cosines crowd between 0.7 and 0.9, so a text's
    nearest neighbours barely count; at a low temperature they dominate, as in nearest-neighbour and
    few-shot classification. Averaged over the batch's texts; zero when the cosines are equal.
    """
    import torch
    import torch.nn.functional as F

    s, t = F.normalize(student, dim=-1), F.normalize(teacher, dim=-1)
    self_pairs = torch.eye(len(s), dtype=torch.bool, device=s.device)
    return _softmax_kl(t @ t.T / temperature, s @ s.T / temperature, self_pairs).mean()


def _log_softmax_without(scores: "torch.Tensor", excluded: "torch.Tensor") -> "torch.Tensor":
    """``log_softmax`` over the last axis with the ``excluded`` entries given no probability."""
    import torch.nn.functional as F

    # A finite floor, not -inf: exp gives 0 there, and the losses built on it and their gradients stay finite.
    return F.log_softmax(scores.masked_fill(excluded, -1e9), dim=-1)


def _softmax_kl(teacher_scores: "torch.Tensor", student_scores: "torch.Tensor", excluded: "torch.Tensor") -> "torch.Tensor":
    """Row-wise KL(softmax(teacher) || softmax(student)) over the last axis, ``excluded`` entries left out."""
    log_t, log_s = _log_softmax_without(teacher_scores, excluded), _log_softmax_without(student_scores, excluded)
    return (log_t.exp() * (log_t - log_s)).masked_fill(excluded, 0.0).sum(-1)


def token_state_loss(student: "torch.Tensor", teacher: "torch.Tensor", mask: "torch.Tensor") -> "torch.Tensor":
    """Relative squared error of the token states, ``|s - t|^2 / |t|^2``, averaged over the real tokens.

    Args:
        student, teacher: (b, t, dim) last hidden states; mask: (b, t), 1 on real tokens.
    """
    err = (student - teacher).pow(2).sum(-1) / teacher.pow(2).sum(-1).clamp(min=1e-6)
    m = mask.to(err.dtype)
    return (err * m).sum() / m.sum().clamp(min=1.0)


def translation_ranking_loss(queries: "torch.Tensor", keys: "torch.Tensor", positives: "torch.Tensor", scale: float) -> "torch.Tensor":
    """In-batch translation ranking: each translation must find its source among the batch's texts.

    Multi-positive InfoNCE, ``-log(sum_pos exp(scale cos) / sum_all exp(scale cos))``, averaged over queries.
    Unlike the MSE targets it penalizes the student only where a translation sits nearer to another
    sentence than to its source, which is what cross-lingual retrieval and classification need.
    The memory term uses it too: a question as the query, the batch's stored facts as keys.

    Args:
        queries: (q, dim) student embeddings of translations.
        keys: (k, dim) teacher embeddings of the batch's texts and of the translations' sources.
        positives: bool (q, k): the keys that mean the same as each query (its source, its other translations).
    """
    import torch
    import torch.nn.functional as F

    logits = scale * F.normalize(queries, dim=-1) @ F.normalize(keys, dim=-1).T
    positive_logits = logits.masked_fill(~positives, float("-inf"))
    return (torch.logsumexp(logits, dim=-1) - torch.logsumexp(positive_logits, dim=-1)).mean()


def supervised_contrastive_loss(embeddings: "torch.Tensor", labels: "torch.Tensor", temperature: float) -> "torch.Tensor":
    """Supervised contrastive loss (Khosla et al., 2020) over one batch of labelled texts.

    For each text, ``-mean_p log softmax_a(cos(i, a) / temperature)[p]`` over the batch's other texts ``a``,
    the positives ``p`` being those with its label; averaged over the texts that have a positive.

    Args:
        embeddings: (b, dim); labels: (b,) integer labels.
    """
    import torch
    import torch.nn.functional as F

    e = F.normalize(embeddings, dim=-1)
    self_pairs = torch.eye(len(e), dtype=torch.bool, device=e.device)
    log_p = _log_softmax_without(e @ e.T / temperature, self_pairs)
    positives = (labels[:, None] == labels[None, :]) & ~self_pairs
    count = positives.sum(-1)
    per_text = -log_p.masked_fill(~positives, 0.0).sum(-1) / count.clamp(min=1)
    has_positive = count > 0
    return per_text[has_positive].mean() if bool(has_positive.any()) else e.sum() * 0.0


def route_probe_loss(embeddings: "torch.Tensor", labels: "torch.Tensor", probe: "torch.nn.Linear", temperature: float) -> "torch.Tensor":
    """Cross-entropy of a linear route probe on the unit embeddings, logits divided by ``temperature``.

    Unlike the supervised contrastive loss it does not pull a route's texts together: its gradient on
    the unit embedding lies in the span of the probe's rows, so distinctions within a route (which stored
    fact a question asks for) are left to the distillation targets. A prefix of the embedding is
    scored by the same prefix of the probe's weights (Matryoshka).

    Args:
        embeddings: (b, d) with d <= probe.in_features; labels: (b,) integer labels.
    """
    import torch.nn.functional as F

    d = embeddings.shape[-1]
    logits = F.linear(F.normalize(embeddings, dim=-1), probe.weight[:, :d], probe.bias) / temperature
    return F.cross_entropy(logits, labels)


def relation_loss(student: "torch.Tensor", teacher: "torch.Tensor", mask: "torch.Tensor", heads: int) -> "torch.Tensor":
    """KL(teacher || student) of the query-query, key-key and value-value relations, averaged over
    the three, the heads and the real tokens. Zero when the projections are equal.

    Args:
        student, teacher: (b, t, 3 * dim): [q | k | v] of the last layer; mask: (b, t), 1 on real tokens.
        heads: attention heads (``config.num_attention_heads``).
    """
    b, t, width = student.shape
    d = width // 3 // heads
    keys_masked = (mask == 0)[:, None, None, :]  # padded keys get no probability

    def relations(x: "torch.Tensor") -> "torch.Tensor":
        x = x.view(b, t, 3, heads, d).permute(2, 0, 3, 1, 4)  # (3, b, heads, t, d)
        return x @ x.transpose(-1, -2) / math.sqrt(d)

    kl = _softmax_kl(relations(teacher), relations(student), keys_masked)  # (3, b, heads, t)
    rows = mask[None, :, None, :].to(kl.dtype)
    return (kl * rows).sum() / (rows.sum() * 3 * heads).clamp(min=1.0)


def distill_loss(
    student: "torch.Tensor",
    teacher: "torch.Tensor",
    config: "DistillConfig",
    translated: Optional["torch.Tensor"] = None,
    source_targets: Optional["torch.Tensor"] = None,
    token_states: Optional[Tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]] = None,
    ranking: Optional[Tuple["torch.Tensor", "torch.Tensor"]] = None,
    relations: Optional[Tuple["torch.Tensor", "torch.Tensor", "torch.Tensor", int]] = None,
    routes: Optional[Tuple["torch.Tensor", "torch.Tensor", Optional["torch.nn.Linear"]]] = None,
    memory: Optional[Tuple["torch.Tensor", "torch.Tensor"]] = None,
    middle: Optional[Tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]] = None,
) -> Dict[str, "torch.Tensor"]:
    """The weighted loss of one batch and its parts, averaged over the Matryoshka prefixes.

    Args:
        student, teacher: (b, dim) embeddings of the same texts.
        translated: indices of the batch rows that are translations (may be empty).
        source_targets: (len(translated), dim) teacher embeddings of their English sources.
        token_states: (student states, teacher states, mask) for the token target (``config.token_weight``).
        ranking: (keys, positives) of ``translation_ranking_loss`` for the rows ``translated`` (``config.rank_weight``).
        relations: (student q/k/v, teacher q/k/v, mask, heads) of ``relations.relation_loss`` (``config.relation_weight``).
        routes: (student embeddings, labels, probe) of route TRAIN examples (``config.route_weight``): the probe's
            ``route_probe_loss`` when ``config.route_loss`` is "probe", else ``supervised_contrastive_loss`` (probe None).
        memory: (student embeddings of stored facts, of the questions that ask for them, row for row) of memory
            pairs (``config.memory_weight``): each question must rank its own fact first among the batch's facts.
        middle: (student first-layer states, teacher states of ``config.middle_layer``, mask) for the middle-layer
            target (``config.middle_weight``), the same relative error as the token target.

    Returns:
        {"loss", "mse", "pair", "neighbourhood", "xling", "token", "middle", "rank", "relation", "route", "memory"}.
    """
    import torch

    dims = config.matryoshka_dims or (student.shape[-1],)
    mse = sum(embedding_mse(student[:, :d], teacher[:, :d]) for d in dims) / len(dims)
    pair = sum(pairwise_cosine_loss(student[:, :d], teacher[:, :d]) for d in dims) / len(dims)
    neighbourhood = torch.zeros((), device=student.device)
    if config.neighbourhood_weight > 0:
        neighbourhood = sum(neighbourhood_loss(student[:, :d], teacher[:, :d], config.neighbourhood_temperature) for d in dims) / len(dims)
    xling = torch.zeros((), device=student.device)
    if translated is not None and len(translated) and config.xling_weight > 0:
        rows = student[translated]
        xling = sum(embedding_mse(rows[:, :d], source_targets[:, :d]) for d in dims) / len(dims)
    token = torch.zeros((), device=student.device)
    if token_states is not None and config.token_weight > 0:
        token = token_state_loss(*token_states)
    middle_term = torch.zeros((), device=student.device)
    if middle is not None and config.middle_weight > 0:
        middle_term = token_state_loss(*middle)
    rank = torch.zeros((), device=student.device)
    if ranking is not None and translated is not None and len(translated) and config.rank_weight > 0:
        rank = translation_ranking_loss(student[translated], *ranking, config.rank_scale)
    relation = torch.zeros((), device=student.device)
    if relations is not None and config.relation_weight > 0:
        relation = relation_loss(*relations)
    route = torch.zeros((), device=student.device)
    if routes is not None and config.route_weight > 0:
        route_emb, labels, probe = routes
        term = partial(route_probe_loss, probe=probe) if config.route_loss == "probe" else supervised_contrastive_loss
        route = sum(term(route_emb[:, :d], labels, temperature=config.route_temperature) for d in dims) / len(dims)
    recall = torch.zeros((), device=student.device)
    if memory is not None and config.memory_weight > 0:
        facts, questions = memory
        own_fact = torch.eye(len(facts), dtype=torch.bool, device=facts.device)
        recall = sum(translation_ranking_loss(questions[:, :d], facts[:, :d], own_fact, config.rank_scale) for d in dims) / len(dims)
    loss = (config.mse_weight * mse + config.pair_weight * pair + config.neighbourhood_weight * neighbourhood + config.xling_weight * xling
            + config.token_weight * token + config.middle_weight * middle_term + config.rank_weight * rank + config.relation_weight * relation + config.route_weight * route
            + config.memory_weight * recall)
    return {"loss": loss, "mse": mse, "pair": pair, "neighbourhood": neighbourhood, "xling": xling, "token": token, "middle": middle_term, "rank": rank,
            "relation": relation, "route": route, "memory": recall}
