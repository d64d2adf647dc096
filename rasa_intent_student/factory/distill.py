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
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from rasa_intent_student.constants import (
    DEFAULT_LAYERS_KEPT,
    DISTILL_MAX_MINUTES,
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
RESULT_FILE = "result.json"  # the run's summary: config, teacher, steps, held-out figures
STUDENT_DIR = "student-st"  # the distilled FP32 student, a sentence-transformers directory
CACHE_DIR = "teacher-cache"
RESIZE_AFTER_STEPS = 250  # steps after warmup at which a time-budgeted run re-measures its speed


@dataclass
class DistillConfig:
    """One distillation run (stored in every checkpoint).

    Attributes:
        output: run directory: corpus + manifest, teacher cache, checkpoint, distilled student.
        teacher: ``e5-small-offline`` or a sentence-transformers directory.
        layers: teacher layers the student starts from.
        max_seq_length: tokens per text (corpus texts are short).
        batch_size, max_steps, lr, warmup_steps, weight_decay, grad_clip: the optimisation.
            ``max_steps=0`` sizes the run to ``max_minutes`` from the speed measured during warmup.
        mse_weight, pair_weight: weights of the embedding MSE and the pairwise-cosine loss. Pair-only (0, 30)
            is the default: every run with MSE weight 1 scored lower on the few-shot intent benchmark, since
            matching absolute directions pulls all embeddings toward the teacher's mean direction while a
            classifier on top only sees the similarity structure.
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
    batch_size: int = 64
    max_steps: int = 0
    lr: float = 4e-4
    warmup_steps: int = 50
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    mse_weight: float = 0.0
    pair_weight: float = 30.0
    matryoshka_dims: Tuple[int, ...] = ()
    eval_fraction: float = 0.02
    eval_interval: int = 250
    threads: int = 2
    max_minutes: float = DISTILL_MAX_MINUTES
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


# --- student, data order, evaluation -----------------------------------------------------------


def make_student(teacher_model: Any, layers: Sequence[int]) -> Any:
    """A copy of the teacher with only ``layers``; word embeddings frozen, the rest trainable."""
    import copy

    from rasa_intent_student.factory.prune import keep_layers

    student = keep_layers(copy.deepcopy(teacher_model), list(layers))
    # The 250k x 384 word embeddings are most of the weights, and vocabulary pruning follows:
    # freezing them keeps the optimizer small and the pruned rows exactly the teacher's.
    student.get_input_embeddings().weight.requires_grad_(False)
    for name, p in student.named_parameters():
        if name.startswith("pooler."):
            p.requires_grad_(False)
    # Eval mode throughout: no dropout for a regression onto fixed targets.
    return student.eval()


def trainable_state(model: Any) -> Dict[str, "torch.Tensor"]:
    """The parameters that training changes (what a checkpoint needs besides the teacher)."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def split_indices(n: int, eval_fraction: float, seed: int) -> Tuple[List[int], List[int]]:
    """(train, held-out) indices of a corpus of ``n`` texts."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_eval = max(1, int(round(n * eval_fraction)))
    return sorted(order[n_eval:]), sorted(order[:n_eval])


def epoch_batches(train: Sequence[int], lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> List[List[int]]:
    """One epoch of batches: shuffled, grouped by similar length (less padding), batch order shuffled."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(train)
    rng.shuffle(order)
    group = batch_size * 50
    batches = []
    for start in range(0, len(order), group):
        chunk = sorted(order[start : start + group], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return [b for b in batches if len(b) == batch_size]  # equal batches: comparable pairwise losses


def lr_at(step: int, config: DistillConfig) -> float:
    """Linear warmup, then cosine decay to 10% (nanoGPT's schedule)."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps))
    return config.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def evaluate(student: Any, ids: Sequence[List[int]], targets: np.ndarray, langs: Sequence[str], pad_id: int, pooling: str) -> Dict[str, float]:
    """Teacher fidelity on held-out texts: mse (2 - 2 cos), cosine, pairwise loss, cosine per language."""
    import torch

    student_emb = embed(student, ids, pad_id, pooling)
    s = student_emb / np.linalg.norm(student_emb, axis=1, keepdims=True)
    t = targets / np.linalg.norm(targets, axis=1, keepdims=True)
    cos = (s * t).sum(1)
    out = {
        "mse": float(((s - t) ** 2).sum(1).mean()),
        "cosine": float(cos.mean()),
        "pair": float(pairwise_cosine_loss(torch.from_numpy(student_emb), torch.from_numpy(targets))),
    }
    for lang in sorted(set(langs)):
        out[f"cosine_{lang}"] = float(cos[[i for i, l in enumerate(langs) if l == lang]].mean())
    return out


# --- the run -----------------------------------------------------------------------------------


def distill(
    config: DistillConfig,
    resume: bool = False,
    stop_at_step: Optional[int] = None,
    log: Optional[Callable[[str], None]] = None,
) -> Dict[str, Any]:
    """Train the pruned student towards the teacher; write corpus, cache, checkpoint and student dir.

    Args:
        config: the run (ignored except ``output`` when resuming: the checkpoint's config wins).
        resume: continue from ``{output}/ckpt.pt`` at its step, with its weights and optimizer.
        stop_at_step: checkpoint and stop there (the schedule still runs to ``max_steps``).
        log: called with one line per evaluation (the CLI prints; the library logs).

    Returns:
        {"config", "step", "eval_start", "eval", "history", "student_dir", "seconds", "steps_per_s"}.
    """
    import torch
    from tqdm import tqdm

    from rasa_intent_student.factory.build import count_parameters
    from rasa_intent_student.factory.teacher import load_teacher

    log = log or logger.info
    out = Path(config.output)
    ckpt_path = out / CHECKPOINT_FILE
    checkpoint = None
    if resume:
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint {ckpt_path}. Run without --resume to start, or pass its --output.")
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        config = DistillConfig.from_dict({**checkpoint["config"], "output": str(out)})
    if config.max_steps <= 0 and (config.max_minutes <= 0 or config.warmup_steps < 5):
        raise ValueError(
            f"max_steps={config.max_steps} sizes the run to max_minutes from the warmup speed, which needs "
            f"max_minutes > 0 (got {config.max_minutes}) and warmup_steps >= 5 (got {config.warmup_steps}); "
            "set max_steps > 0 or fix those."
        )
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)

    corpus = build_corpus(config.corpus)
    save_corpus(corpus, out / CORPUS_FILE)
    manifest = corpus_manifest(corpus, config.corpus)
    (out / CORPUS_MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    texts, langs = [row.text for row in corpus], [row.lang for row in corpus]

    teacher = load_teacher(config.teacher, out)
    ids = tokenize(teacher.tokenizer_path, texts, teacher.prefix, config.max_seq_length)
    pad_id = int(teacher.model.config.pad_token_id or 0)  # any id: padded positions are masked
    cache = teacher_cache_path(out / CACHE_DIR, teacher.source, teacher.prefix, teacher.pooling, config.max_seq_length, manifest["sha256"])
    started = time.time()
    targets = teacher_embeddings(teacher.model, ids, pad_id, teacher.pooling, cache)
    log(f"teacher embeddings of {len(ids)} texts: {time.time() - started:.0f} s ({cache})")

    teacher_size = {"teacher_layers": int(teacher.model.config.num_hidden_layers), "teacher_parameters": count_parameters(teacher.model)}
    student = make_student(teacher.model, config.layers)
    del teacher.model  # the 12-layer teacher is no longer needed
    params = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    train_idx, eval_idx = split_indices(len(texts), config.eval_fraction, config.seed)
    eval_args = ([ids[i] for i in eval_idx], targets[eval_idx], [langs[i] for i in eval_idx], pad_id, teacher.pooling)
    step, history, eval_start = 0, [], None
    if checkpoint is not None:
        student.load_state_dict(checkpoint["model"], strict=False)
        optimizer.load_state_dict(checkpoint["optimizer"])
        step, history, eval_start = checkpoint["step"], checkpoint["history"], checkpoint["eval_start"]
        log(f"resumed at step {step}")
    if eval_start is None:
        eval_start = evaluate(student, *eval_args)
        log(f"step 0: held-out mse {eval_start['mse']:.4f} cosine {eval_start['cosine']:.4f} pair {eval_start['pair']:.5f}")

    def save_checkpoint() -> None:
        state = {"config": asdict(config), "step": step, "model": trainable_state(student),
                 "optimizer": optimizer.state_dict(), "history": history, "eval_start": eval_start}
        torch.save(state, ckpt_path.with_suffix(".tmp"))
        ckpt_path.with_suffix(".tmp").replace(ckpt_path)  # never leave a half-written checkpoint

    lengths = [len(row) for row in ids]
    per_epoch = epoch_batches(train_idx, lengths, config.batch_size, config.seed, 0)
    if not per_epoch:
        raise ValueError(f"batch_size={config.batch_size} is larger than the {len(train_idx)} training texts; lower it.")
    steps_per_epoch = len(per_epoch)
    start, start_step, epoch, batches = time.time(), step, 0, per_epoch
    # Sizing to the time budget: warmup does not depend on max_steps, so time it (without the first, slow
    # steps), fit the cosine schedule to what is left (8% kept for evaluations and saving), and correct the
    # estimate once more a few hundred steps later, while the schedule has barely moved.
    sized_to_budget, timed_from = config.max_steps <= 0, None
    skip = min(5, config.warmup_steps // 2)
    resize_at = (config.warmup_steps, config.warmup_steps + RESIZE_AFTER_STEPS)
    bar = tqdm(total=config.max_steps or None, initial=step, desc="distill", unit="step")
    while config.max_steps <= 0 or step < config.max_steps:
        if sized_to_budget and step == start_step + skip:
            timed_from = (step, time.time())
        if sized_to_budget and step in resize_at and timed_from is not None:
            rate = (step - timed_from[0]) / max(time.time() - timed_from[1], 1e-9)
            config = replace(config, max_steps=max(step + 1, int(0.92 * rate * (config.max_minutes * 60 - (time.time() - start)) + step)))
            bar.total = config.max_steps
            log(f"measured {rate:.2f} steps/s: max_steps = {config.max_steps} for max_minutes={config.max_minutes}")
        if step // steps_per_epoch != epoch:
            epoch = step // steps_per_epoch
            batches = epoch_batches(train_idx, lengths, config.batch_size, config.seed, epoch)
        batch = batches[step % steps_per_epoch]
        input_ids, mask = collate([ids[i] for i in batch], pad_id)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        emb = pool(student(input_ids=input_ids, attention_mask=mask).last_hidden_state, mask, teacher.pooling)
        losses = distill_loss(emb, torch.from_numpy(targets[batch]), config)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{losses['loss'].item():.4f}", mse=f"{losses['mse'].item():.4f}")
        out_of_time = config.max_minutes > 0 and time.time() - start > config.max_minutes * 60
        out_of_time = out_of_time or step == stop_at_step
        if step % config.eval_interval == 0 or step == config.max_steps or out_of_time:
            metrics = evaluate(student, *eval_args)
            history.append({"step": step, "train_loss": round(losses["loss"].item(), 6), "lr": lr_at(step - 1, config),
                            "seconds": round(time.time() - start, 1), **{k: round(v, 6) for k, v in metrics.items()}})
            log(f"step {step}: held-out mse {metrics['mse']:.4f} cosine {metrics['cosine']:.4f} pair {metrics['pair']:.5f}")
            save_checkpoint()
        if out_of_time:
            log(f"stopped at step {step} of {config.max_steps}; --resume continues from here.")
            break
    bar.close()
    seconds = time.time() - start
    student_dir = save_student(student, teacher, out / STUDENT_DIR, config)
    (out / HISTORY_FILE).write_text(json.dumps(history, indent=2) + "\n", encoding="utf-8")
    result = {
        "config": asdict(config),
        "teacher": teacher.source,
        **teacher_size,
        "step": step,
        "eval_start": eval_start,
        "eval": history[-1] if history else eval_start,
        "student_dir": str(student_dir),
        "seconds": round(seconds, 1),
        "steps_per_s": round((step - start_step) / max(seconds, 1e-9), 3),
    }
    (out / RESULT_FILE).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return {**result, "history": history, "corpus": manifest}


def save_student(student: Any, teacher: Any, directory: Path, config: DistillConfig) -> Path:
    """The distilled FP32 student as a sentence-transformers directory (a ``build --teacher`` source)."""
    import shutil

    from rasa_intent_student.factory.stdir import write_hf_tokenizer_config, write_st_metadata

    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    student.save_pretrained(str(directory))
    shutil.copyfile(teacher.tokenizer_path, directory / "tokenizer.json")
    write_hf_tokenizer_config(directory)
    write_st_metadata(directory, dim=student.config.hidden_size, prefix=teacher.prefix)
    (directory / "distill.json").write_text(json.dumps({"distilled_from": teacher.source, "layers": list(config.layers)}, indent=2) + "\n", encoding="utf-8")
    return directory
