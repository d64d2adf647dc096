"""The training loop: student, batches, optimizer, evaluation, checkpoints (nanoGPT-sized)."""
import contextlib
import copy
import logging
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from rasa_intent_student.factory.distill.budget import StepBudget, lr_at
from rasa_intent_student.factory.distill.config import DistillConfig
from rasa_intent_student.factory.distill.data import (
    MemorySet,
    RouteSet,
    epoch_batches,
    neighbour_batches,
    ranking_keys,
    same_language_neighbours,
    split_indices,
)
from rasa_intent_student.factory.distill.losses import distill_loss, pairwise_cosine_loss, relation_loss, token_state_loss
from rasa_intent_student.factory.distill.relations import last_layer_qkv, student_qkv
from rasa_intent_student.factory.distill.middle import STUDENT_LAYER
from rasa_intent_student.factory.distill.targets import TokenStates, collate, embed, layer_output, pool
from rasa_intent_student.pooling import normalize
from rasa_intent_student.errors import StudentError

logger = logging.getLogger(__name__)


def resolve_device(name: str) -> str:
    """``auto``: cuda when torch sees a GPU, else cpu."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise StudentError("device='cuda' but torch sees no GPU; use --device cpu (the default) or auto.")
    return name


def load_checkpoint(path: Union[str, Path]) -> Dict[str, Any]:
    """A run's checkpoint (weights, optimizer, history), read as tensors and plain values only: no pickled code runs."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def make_student(teacher_model: Any, layers: Sequence[int], trainable_tokens: Sequence[int] = ()) -> Any:
    """A copy of the teacher with only ``layers``; word embeddings frozen, the rest trainable.

    ``trainable_tokens``: word-embedding rows that get a trainable delta (``distill.embeddings``).
    """
    from rasa_intent_student.factory.prune import keep_layers

    student = keep_layers(copy.deepcopy(teacher_model), list(layers))
    # The 250k x 384 word embeddings are most of the weights, and vocabulary pruning follows:
    # freezing them keeps the optimizer small and the pruned rows exactly the teacher's.
    student.get_input_embeddings().weight.requires_grad_(False)
    for name, p in student.named_parameters():
        if name.startswith("pooler."):
            p.requires_grad_(False)
    if len(trainable_tokens):
        from rasa_intent_student.factory.distill.embeddings import add_delta

        add_delta(student, trainable_tokens)
    # Eval mode throughout: no dropout for a regression onto fixed targets.
    return student.eval()


def trainable_state(model: Any) -> Dict[str, "torch.Tensor"]:
    """The parameters that training changes (what a checkpoint needs besides the teacher), on the CPU,
    and which word-embedding rows a delta covers, if any."""
    from rasa_intent_student.factory.distill.embeddings import TOKENS_KEY

    state = {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}
    buffers = dict(model.named_buffers())
    if TOKENS_KEY in buffers:
        state[TOKENS_KEY] = buffers[TOKENS_KEY].cpu().clone()
    return state


def param_groups(student: Any, config: DistillConfig) -> List[Dict[str, Any]]:
    """The optimizer's groups: the layers at ``lr``, a word-embedding delta at ``embedding_lr`` times it
    (no weight decay: the delta starts at zero and only moves where the corpus pushes it)."""
    named = [(n, p) for n, p in student.named_parameters() if p.requires_grad]
    delta = [p for n, p in named if n.endswith("word_embeddings.delta")]
    groups = [{"params": [p for n, p in named if not n.endswith("word_embeddings.delta")], "lr_scale": 1.0}]
    if delta:
        groups.append({"params": delta, "lr_scale": config.embedding_lr, "weight_decay": 0.0})
    return groups


def evaluate(
    student: Any,
    ids: Sequence[List[int]],
    targets: np.ndarray,
    langs: Sequence[str],
    pad_id: int,
    pooling: str,
    source_targets: Optional[np.ndarray] = None,
    translated: Optional[np.ndarray] = None,
    token_states: Optional[TokenStates] = None,
    teacher_qkv: Optional[TokenStates] = None,
    middle_states: Optional[TokenStates] = None,
) -> Dict[str, float]:
    """Teacher fidelity on held-out texts: mse (2 - 2 cos), cosine, pairwise loss, per-language cosine,
    ``xling``: 2 - 2 cos between a held-out translation and the teacher's embedding of its English source,
    ``token``: the token target's error, where the teacher's token states are given (rows of ``ids``),
    ``relation``: the relation target's error, where the teacher's last-layer q/k/v are given,
    and ``middle``: the middle-layer target's error, where the teacher's states of that layer are given."""
    import torch

    emb = embed(student, ids, pad_id, pooling)
    s, t = normalize(emb), normalize(targets)
    cos = (s * t).sum(1)
    out = {
        "mse": float(((s - t) ** 2).sum(1).mean()),
        "cosine": float(cos.mean()),
        "pair": float(pairwise_cosine_loss(torch.from_numpy(emb), torch.from_numpy(targets))),
    }
    if translated is not None and translated.any():
        src = normalize(source_targets[translated])
        out["xling"] = float(((s[translated] - src) ** 2).sum(1).mean())
        # Retrieval: does each held-out translation find its own source among all held-out sources?
        sims = s[translated] @ src.T
        out["xling_top1"] = float((sims.max(1) <= np.diag(sims) + 1e-6).mean())
    if token_states is not None:
        out["token"] = held_out_token_error(student, ids, token_states, pad_id)
    if teacher_qkv is not None:
        out["relation"] = held_out_relation_error(student, ids, teacher_qkv, pad_id)
    if middle_states is not None:
        out["middle"] = held_out_middle_error(student, ids, middle_states, pad_id)
    for lang in sorted(set(langs)):
        out[f"cosine_{lang}"] = float(cos[[i for i, l in enumerate(langs) if l == lang]].mean())
    return out


def held_out_line(metrics: Dict[str, float]) -> str:
    """One log line of the held-out figures."""
    nan = float("nan")
    return (f"held-out mse {metrics['mse']:.4f} cosine {metrics['cosine']:.4f} pair {metrics['pair']:.5f} "
            f"xling {metrics.get('xling', nan):.4f} top1 {metrics.get('xling_top1', nan):.3f} token {metrics.get('token', nan):.4f}"
            + (f" relation {metrics['relation']:.4f}" if "relation" in metrics else "")
            + (f" middle {metrics['middle']:.4f}" if "middle" in metrics else ""))


def held_out_token_error(student: Any, ids: Sequence[List[int]], token_states: TokenStates, pad_id: int) -> float:
    """The token target's error over ``ids`` (``token_states`` row ``i`` belongs to ``ids[i]``), token-weighted."""

    def batch_error(input_ids, mask, target):
        return token_state_loss(student(input_ids=input_ids, attention_mask=mask).last_hidden_state, target, mask)

    return _token_weighted_mean(student, ids, token_states, pad_id, batch_error)


def held_out_relation_error(student: Any, ids: Sequence[List[int]], teacher_qkv: TokenStates, pad_id: int) -> float:
    """The relation target's error over ``ids`` (``teacher_qkv`` row ``i`` belongs to ``ids[i]``), token-weighted."""
    with last_layer_qkv(student) as captured:

        def batch_error(input_ids, mask, target):
            student(input_ids=input_ids, attention_mask=mask)
            return relation_loss(student_qkv(captured), target, mask, student.config.num_attention_heads)

        return _token_weighted_mean(student, ids, teacher_qkv, pad_id, batch_error)


def held_out_middle_error(student: Any, ids: Sequence[List[int]], middle_states: TokenStates, pad_id: int) -> float:
    """The middle-layer target's error over ``ids`` (``middle_states`` row ``i`` belongs to ``ids[i]``), token-weighted."""
    with layer_output(student, STUDENT_LAYER) as first_layer:

        def batch_error(input_ids, mask, target):
            student(input_ids=input_ids, attention_mask=mask)
            return token_state_loss(first_layer(), target, mask)

        return _token_weighted_mean(student, ids, middle_states, pad_id, batch_error)


def _token_weighted_mean(student: Any, ids: Sequence[List[int]], states: TokenStates, pad_id: int,
                         batch_error: Callable[..., "torch.Tensor"], batch_size: int = 64) -> float:
    """``batch_error(input_ids, mask, teacher states)`` over ``ids`` in batches, averaged by real tokens, no grad."""
    import torch

    device = next(student.parameters()).device
    total, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(ids), batch_size):
            rows = list(range(start, min(start + batch_size, len(ids))))
            input_ids, mask = collate([ids[i] for i in rows], pad_id, device)
            target = torch.from_numpy(states.batch(rows, input_ids.shape[1])).to(device)
            n = int(mask.sum())
            total += float(batch_error(input_ids, mask, target)) * n
            tokens += n
    return total / max(tokens, 1)


def train(
    student: Any,
    ids: Sequence[List[int]],
    langs: Sequence[str],
    targets: np.ndarray,
    source_index: np.ndarray,
    translated: np.ndarray,
    config: DistillConfig,
    pad_id: int,
    pooling: str,
    checkpoint_path: Path,
    checkpoint: Optional[Dict[str, Any]] = None,
    stop_at_step: Optional[int] = None,
    log: Callable[[str], None] = logger.info,
    token_states: Optional[TokenStates] = None,
    teacher_qkv: Optional[TokenStates] = None,
    routes: Optional[RouteSet] = None,
    memories: Optional[MemorySet] = None,
    middle_states: Optional[TokenStates] = None,
) -> Dict[str, Any]:
    """Train ``student`` towards ``targets`` (and translations towards their sources' targets).

    Args:
        ids, langs, targets: one entry per corpus row.
        source_index: (n,) row of each translation's English source, -1 elsewhere.
        translated: bool (n,): rows whose translation target is on (``config.xling_sources``).
        checkpoint: a loaded checkpoint to continue from (weights, optimizer, step, history).
        stop_at_step: checkpoint and stop there (the schedule still runs to ``max_steps``).
        token_states: the teacher's token states of every row (needed when ``config.token_weight > 0``).
        teacher_qkv: the teacher's last-layer q/k/v of every row (needed when ``config.relation_weight > 0``).
        routes: route TRAIN examples (needed when ``config.route_weight > 0``).
        memories: memory pairs (needed when ``config.memory_weight > 0``).
        middle_states: the teacher's token states of layer ``config.middle_layer`` of every row (needed when
            ``config.middle_weight > 0``).

    Returns:
        {"config", "step", "eval_start", "history", "seconds", "steps_per_s"}.
    """
    import torch
    from tqdm import tqdm

    device = resolve_device(config.device)
    student.to(device)
    if config.route_weight > 0 and routes is None:
        raise StudentError(f"route_weight={config.route_weight} needs the route TRAIN examples; pass routes.")
    if config.memory_weight > 0 and memories is None:
        raise StudentError(f"memory_weight={config.memory_weight} needs the memory pairs; pass memories.")
    groups = param_groups(student, config)
    probe = None
    if config.route_weight > 0 and config.route_loss == "probe":
        # Zero weights: no gradient reaches the student until the probe has learned a direction.
        probe = torch.nn.Linear(student.config.hidden_size, len(routes.names)).to(device)
        torch.nn.init.zeros_(probe.weight)
        torch.nn.init.zeros_(probe.bias)
        groups.append({"params": list(probe.parameters()), "lr_scale": 1.0})
    params = [p for group in groups for p in group["params"]]
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    targets_t = torch.from_numpy(targets).to(device)
    source_of = np.where(translated, source_index, -1)
    train_idx, eval_idx = split_indices(len(ids), config.eval_fraction, config.seed)
    eval_sources = targets[np.maximum(source_of[eval_idx], 0)]
    if config.token_weight > 0 and token_states is None:
        raise StudentError(f"token_weight={config.token_weight} needs the teacher's token states; pass token_states.")
    if config.relation_weight > 0 and teacher_qkv is None:
        raise StudentError(f"relation_weight={config.relation_weight} needs the teacher's last-layer q/k/v; pass teacher_qkv.")
    if config.middle_weight > 0 and middle_states is None:
        raise StudentError(f"middle_weight={config.middle_weight} needs the teacher's layer-{config.middle_layer} token states; "
                           "pass middle_states.")
    eval_tokens, eval_qkv, eval_middle = (None if states is None else states.subset(eval_idx)
                                          for states in (token_states, teacher_qkv, middle_states))
    eval_args = ([ids[i] for i in eval_idx], targets[eval_idx], [langs[i] for i in eval_idx], pad_id, pooling,
                 eval_sources, source_of[eval_idx] >= 0, eval_tokens, eval_qkv, eval_middle)
    step, history, eval_start = 0, [], None
    if checkpoint is not None:
        student.load_state_dict(checkpoint["model"], strict=False)
        if probe is not None:
            probe.load_state_dict(checkpoint["route_probe"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        step, history, eval_start = checkpoint["step"], checkpoint["history"], checkpoint["eval_start"]
        log(f"resumed at step {step}")
    if eval_start is None:
        eval_start = evaluate(student, *eval_args)
        log(f"step 0: {held_out_line(eval_start)}")

    def save_checkpoint() -> None:
        state = {"config": asdict(config), "step": step, "model": trainable_state(student),
                 "optimizer": optimizer.state_dict(), "history": history, "eval_start": eval_start}
        if probe is not None:
            state["route_probe"] = trainable_state(probe)
        torch.save(state, checkpoint_path.with_suffix(".tmp"))
        checkpoint_path.with_suffix(".tmp").replace(checkpoint_path)  # never leave a half-written checkpoint

    lengths = [len(row) for row in ids]
    if config.neighbours > 0:
        near = same_language_neighbours(targets, train_idx, langs, config.neighbours)
        make_batches = partial(neighbour_batches, train_idx, near, lengths, config.batch_size, config.seed)  # (epoch) -> batches
    else:
        make_batches = partial(epoch_batches, train_idx, lengths, config.batch_size, config.seed)
    steps_per_epoch = len(make_batches(0))
    if not steps_per_epoch:
        raise StudentError(f"batch_size={config.batch_size} is larger than the {len(train_idx)} training texts; lower it.")
    budget, start_step, epoch, batches = StepBudget(config, step), step, -1, []
    bar = tqdm(total=config.max_steps or None, initial=step, desc="distill", unit="step", mininterval=5)
    while config.max_steps <= 0 or step < config.max_steps:
        config, line = budget.update(step, config)
        if line:
            bar.total = config.max_steps
            log(line)
        if step // steps_per_epoch != epoch:
            epoch = step // steps_per_epoch
            batches = make_batches(epoch)
        batch = batches[step % steps_per_epoch]
        input_ids, mask = collate([ids[i] for i in batch], pad_id, device)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config) * group.get("lr_scale", 1.0)  # optimizer states saved before the delta lack it
        # The hooks only where a layer-wise target reads them: this is the hot path.
        with contextlib.ExitStack() as hooks:
            captured = hooks.enter_context(last_layer_qkv(student)) if config.relation_weight > 0 else {}
            first_layer = hooks.enter_context(layer_output(student, STUDENT_LAYER)) if config.middle_weight > 0 else None
            hidden = student(input_ids=input_ids, attention_mask=mask).last_hidden_state
            middle_args = None
            if first_layer is not None:
                middle_args = (first_layer(), torch.from_numpy(middle_states.batch(batch, input_ids.shape[1])).to(device), mask)
        emb = pool(hidden, mask, pooling)
        sources = source_of[batch]
        rows = np.nonzero(sources >= 0)[0]
        token_args = None
        if config.token_weight > 0:
            token_args = (hidden, torch.from_numpy(token_states.batch(batch, input_ids.shape[1])).to(device), mask)
        ranking = None
        if config.rank_weight > 0 and len(rows):
            key_rows, positives = ranking_keys(batch, source_of)
            ranking = (targets_t[torch.from_numpy(key_rows).to(device)], torch.from_numpy(positives).to(device))
        relations = None
        if config.relation_weight > 0:
            relations = (student_qkv(captured), torch.from_numpy(teacher_qkv.batch(batch, input_ids.shape[1])).to(device),
                         mask, student.config.num_attention_heads)
        def encode(extra_ids: Sequence[List[int]]) -> "torch.Tensor":  # a second, smaller forward pass
            extra, extra_mask = collate(extra_ids, pad_id, device)
            return pool(student(input_ids=extra, attention_mask=extra_mask).last_hidden_state, extra_mask, pooling)

        route_args = None
        if config.route_weight > 0:  # labelled route examples
            drawn = routes.batch(config.route_batch_size, config.seed, step)
            route_args = (encode([routes.ids[i] for i in drawn]), torch.from_numpy(routes.labels[drawn]).to(device), probe)
        memory_args = None
        if config.memory_weight > 0:  # facts, then the questions that ask for them
            facts, questions = memories.batch(config.memory_batch_size, config.seed, step)
            memory_emb = encode([memories.ids[i] for i in (*facts, *questions)])
            memory_args = (memory_emb[: len(facts)], memory_emb[len(facts) :])
        losses = distill_loss(emb, targets_t[batch], config, torch.from_numpy(rows).to(device), targets_t[sources[rows]],
                              token_args, ranking, relations, route_args, memory_args, middle_args)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        step += 1
        bar.update(1)
        out_of_time = budget.out_of_time(config) or step == stop_at_step
        if step % config.eval_interval == 0 or step == config.max_steps or out_of_time:
            metrics = evaluate(student, *eval_args)
            history.append({"step": step, "train_loss": round(losses["loss"].item(), 6), "lr": lr_at(step - 1, config),
                            "seconds": round(time.time() - budget.started, 1), **{k: round(v, 6) for k, v in metrics.items()}})
            log(f"step {step}: {held_out_line(metrics)}")
            save_checkpoint()
        if out_of_time:
            log(f"stopped at step {step} of {config.max_steps}; --resume continues from here.")
            break
    bar.close()
    seconds = time.time() - budget.started
    return {"config": config, "step": step, "eval_start": eval_start, "history": history, "seconds": round(seconds, 1),
            "steps_per_s": round((step - start_step) / max(seconds, 1e-9), 3)}
