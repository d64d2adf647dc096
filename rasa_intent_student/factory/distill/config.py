"""One distillation run's settings: the single home of their defaults and their help text.

``commands/distill.py`` generates its flags from these fields (``help`` in each
field's metadata), so a default is written once.
"""
from dataclasses import dataclass, field, fields
from typing import Any, Dict, Tuple

from rasa_intent_student.constants import DEFAULT_LAYERS_KEPT, DISTILL_MAX_SEQ_LENGTH, DISTILL_OUTPUT_DIR, E5_OFFLINE_TEACHER
from rasa_intent_student.factory.corpus import CorpusConfig
from rasa_intent_student.errors import StudentError


ROUTE_LOSSES = ("contrastive", "probe")


def _opt(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass
class DistillConfig:
    """One distillation run (stored in every checkpoint).

    The loss of a batch is ``mse_weight * MSE(student(x), teacher(x))
    + pair_weight * pairwise-cosine(student, teacher) + neighbourhood_weight * KL(softmax(cos_teacher / T) || softmax(cos_student / T))
    + xling_weight * MSE(student(t), teacher(s))
    + token_weight * |H_student(x) - H_teacher(x)|^2 / |H_teacher(x)|^2
    + middle_weight * |H1_student(x) - Hk_teacher(x)|^2 / |Hk_teacher(x)|^2 + rank_weight * InfoNCE(student(t); teacher(s), batch)
    + relation_weight * KL(relations_teacher(x) || relations_student(x)) + route_weight * SupCon(student(r), route(r))
    + memory_weight * InfoNCE(student(q); student(f), batch)``. The translation term runs over the
    translations ``t`` in the batch, whose English source ``s`` the teacher embeds: the multilingual
    knowledge-distillation target that keeps translations together. The token term matches the last
    hidden state ``H`` of every token (a layer-wise target: the student's last layer is the teacher's).
    The neighbourhood term compares, per text, the distribution over the batch's other texts at a low
    temperature ``T``: its nearest neighbours, which the pairwise MSE weighs no more than any pair.
    The middle-layer term (off by default) matches the token states ``H1`` after the student's first layer
    with the teacher's ``Hk`` after layer ``middle_layer`` (``distill.middle``).
    The relation term (MiniLMv2) matches the last layer's query-query, key-key and value-value
    self-attention relations per head, another layer-wise target.
    The ranking term asks each translation to be nearer to its source than to every other text in the
    batch (in-batch negatives, the translation-ranking task of multilingual sentence encoders).
    The route term (off by default) is supervised contrastive over a batch ``r`` of route TRAIN examples
    drawn evenly across routes, or the cross-entropy of a linear route probe on them (``route_loss``):
    a route-aware student. The route dev split is never trained on.
    The memory term (off by default) draws memory pairs (``parallel.memory_pairs``): a fact ``f`` stored in one
    language and the question ``q`` that asks for it in another. Each question must rank its own fact first
    among the batch's facts, which is what a memory bot's ``recall`` does.
    """

    output: str = _opt(str(DISTILL_OUTPUT_DIR), "run directory: corpus, teacher cache, ckpt.pt, student-st/")
    teacher_cache: str = _opt("", "directory of the teacher's cached targets (empty: OUTPUT/teacher-cache); runs over the "
                              "same corpus can share one, as its files are keyed by teacher, corpus and length")
    teacher: str = _opt(E5_OFFLINE_TEACHER, f"'{E5_OFFLINE_TEACHER}' or a local sentence-transformers directory")
    layers: Tuple[int, ...] = _opt(DEFAULT_LAYERS_KEPT, "teacher layers the student starts from")
    max_seq_length: int = _opt(DISTILL_MAX_SEQ_LENGTH, "tokens per text (corpus texts are short)")
    batch_size: int = _opt(64, "texts per optimizer step")
    max_steps: int = _opt(12000, "optimizer steps (0: size the run to --max-minutes from the measured speed)")
    lr: float = _opt(4e-4, "peak learning rate (AdamW, linear warmup then cosine decay to 10%)")
    warmup_steps: int = _opt(200, "linear warmup steps; with --max-steps 0 the speed is measured over them")
    weight_decay: float = _opt(0.01, "AdamW weight decay")
    grad_clip: float = _opt(1.0, "gradient-norm clip")
    mse_weight: float = _opt(1.0, "weight of the absolute target: MSE between student and teacher unit embeddings")
    pair_weight: float = _opt(30.0, "weight of the in-batch pairwise-cosine loss (the similarity structure)")
    neighbourhood_weight: float = _opt(0.0, "weight of the neighbourhood target: each text's softmax over the batch's other "
                                       "texts by cosine / --neighbourhood-temperature, student towards teacher (KL)")
    neighbourhood_temperature: float = _opt(0.05, "temperature of the neighbourhood target (cosine units; lower weighs the "
                                            "nearest texts more)")
    xling_weight: float = _opt(1.0, "weight of the translation target: a translation's embedding towards the teacher's embedding of its English source")
    token_weight: float = _opt(1.0, "weight of the token target: each token's last hidden state towards the teacher's "
                               "(relative squared error; the teacher's token states are cached beside its embeddings)")
    middle_weight: float = _opt(0.0, "weight of the middle-layer target: each token's state after the student's first layer "
                                "towards the teacher's after --middle-layer (relative squared error; the teacher's states of "
                                "that layer are cached per token)")
    middle_layer: int = _opt(10, "teacher layer (0-based) whose token states the middle-layer target trains the student's first "
                             "layer towards; 10 is what the teacher's last layer, the student's second, was trained on")
    relation_weight: float = _opt(0.0, "weight of the attention-relation target: the last layer's query-query, key-key and "
                                  "value-value relations per head towards the teacher's (KL; its q/k/v are cached per token)")
    rank_weight: float = _opt(0.0, "weight of the translation-ranking term: each translation must rank its English source "
                              "first among the batch's texts (in-batch negatives, teacher embeddings as keys)")
    rank_scale: float = _opt(20.0, "inverse temperature of the ranking terms, translation and memory (cosines are multiplied by it)")
    route_weight: float = _opt(0.0, "weight of the route-aware term: supervised contrastive loss over route TRAIN examples "
                               "(same route: positives), a separate batch each step; the dev split is never used")
    route_loss: str = _opt("contrastive", "form of the route-aware term: 'contrastive' (supervised contrastive between the route "
                           "examples, which pulls each route together) or 'probe' (cross-entropy of a linear route probe on the "
                           "unit embedding, trained beside the student and dropped after; it moves the embedding only along the "
                           "probe's directions)")
    route_temperature: float = _opt(0.1, "temperature of the route-aware term (cosine units; the probe's logits are divided by it)")
    route_batch_size: int = _opt(48, "route TRAIN examples per step for the route-aware term, drawn evenly across routes")
    memory_weight: float = _opt(0.0, "weight of the memory term: each question of a memory pair must rank the fact it asks for "
                                "first among the batch's stored facts, question and fact in languages drawn at random "
                                "(dialogue-pairs data, a separate batch each step)")
    memory_batch_size: int = _opt(32, "memory pairs per step for the memory term (their facts are each other's negatives)")
    neighbours: int = _opt(0, "texts of the same language nearest to each drawn text (by the teacher's embedding) that join "
                           "it in the batch, so the pairwise target sees fine distinctions (0: random batches by length)")
    embedding_lr: float = _opt(0.2, "learning rate of the word embeddings of frequent corpus tokens, as a multiple of --lr "
                               "(0: the teacher's embeddings stay frozen; a trained delta is merged into them at the end)")
    embedding_min_count: int = _opt(5, "corpus occurrences a token needs for its embedding to train (with --embedding-lr)")
    xling_sources: Tuple[str, ...] = _opt(("dialogue", "django"), "parallel sources whose pairs get the translation target")
    matryoshka_dims: Tuple[int, ...] = _opt((), "embedding prefixes the losses are averaged over (empty: full dim only)")
    eval_fraction: float = _opt(0.02, "share of the corpus held out for evaluation")
    eval_interval: int = _opt(1000, "steps between evaluations and checkpoints")
    threads: int = _opt(1, "torch CPU threads (1: robust when other work shares the CPU; 2 is faster on an idle 2-core machine)")
    device: str = _opt("cpu", "torch device: cpu, cuda or auto (cuda when available)")
    max_minutes: float = _opt(0.0, "training wall time: stop and checkpoint after it, --resume continues (0: no limit)")
    init_from: str = _opt("", "start from the student of an earlier run (its ckpt.pt) instead of the teacher's layers, "
                          "e.g. a second stage with other loss weights")
    seed: int = _opt(0, "data order, held-out split, corpus n-grams")
    corpus: CorpusConfig = field(default_factory=CorpusConfig)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "DistillConfig":
        """Inverse of ``asdict`` (tuples restored), as stored in checkpoints."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise StudentError(f"Unknown DistillConfig keys {unknown}. Valid keys: {sorted(known)}.")
        values = dict(data)
        # Checkpoints from before the token target and the embedding delta trained without them.
        values.setdefault("token_weight", 0.0)
        values.setdefault("embedding_lr", 0.0)
        values.setdefault("rank_weight", 0.0)
        values.setdefault("relation_weight", 0.0)
        values.setdefault("neighbourhood_weight", 0.0)
        values.setdefault("route_weight", 0.0)
        values.setdefault("route_loss", "contrastive")
        corpus = dict(data.get("corpus", {}))
        for key in ("languages", "parallel_sources"):
            if key in corpus:
                corpus[key] = tuple(corpus[key])
        values["corpus"] = CorpusConfig(**corpus)
        for f in fields(cls):
            if f.name in values and isinstance(f.default, tuple):
                values[f.name] = tuple(values[f.name])
        return cls(**values)

    def check(self) -> None:
        """Raise ValueError naming the first impossible setting."""
        from rasa_intent_student.factory.parallel import PARALLEL_SOURCES

        if self.max_steps <= 0 and (self.max_minutes <= 0 or self.warmup_steps < 5):
            raise StudentError(
                f"max_steps={self.max_steps} sizes the run to max_minutes from the warmup speed, which needs "
                f"max_minutes > 0 (got {self.max_minutes}) and warmup_steps >= 5 (got {self.warmup_steps}); "
                "set max_steps > 0 or fix those."
            )
        for name, sources in (("xling_sources", self.xling_sources), ("parallel_sources", self.corpus.parallel_sources)):
            unknown = [s for s in sources if s not in PARALLEL_SOURCES]
            if unknown:
                raise StudentError(f"Unknown {name} {unknown}. Valid: {list(PARALLEL_SOURCES)}.")
        if self.device not in ("cpu", "cuda", "auto"):
            raise StudentError(f"device={self.device!r} is invalid; use cpu, cuda or auto.")
        if self.embedding_min_count < 1:
            raise StudentError(f"embedding_min_count={self.embedding_min_count} must be >= 1 (occurrences in the corpus).")
        if not 0 <= self.neighbours < self.batch_size:
            raise StudentError(f"neighbours={self.neighbours} must be >= 0 and below batch_size={self.batch_size} "
                               "(each drawn text brings that many neighbours into its batch), e.g. 3.")
        if self.neighbourhood_temperature <= 0:
            raise StudentError(f"neighbourhood_temperature={self.neighbourhood_temperature} must be > 0 (cosine units, e.g. 0.05).")
        if self.route_temperature <= 0:
            raise StudentError(f"route_temperature={self.route_temperature} must be > 0 (cosine units, e.g. 0.1).")
        if self.route_loss not in ROUTE_LOSSES:
            raise StudentError(f"route_loss={self.route_loss!r} is unknown. Valid: {list(ROUTE_LOSSES)}.")
        if self.route_batch_size < 2:
            raise StudentError(f"route_batch_size={self.route_batch_size} must be >= 2 (it is split evenly across the routes, e.g. 48 for 3).")
        if self.memory_batch_size < 2:
            raise StudentError(f"memory_batch_size={self.memory_batch_size} must be >= 2 (the other pairs' facts are the negatives), e.g. 32.")
        if self.middle_layer < 0:
            raise StudentError(f"middle_layer={self.middle_layer} must be >= 0 (a teacher layer, 0-based, e.g. 10).")
        if self.rank_scale <= 0:
            raise StudentError(f"rank_scale={self.rank_scale} must be > 0 (an inverse temperature, e.g. 20).")
        for name in ("mse_weight", "pair_weight", "neighbourhood_weight", "xling_weight", "token_weight", "middle_weight", "relation_weight", "rank_weight",
                     "route_weight", "memory_weight", "embedding_lr"):
            if getattr(self, name) < 0:
                raise StudentError(f"{name}={getattr(self, name)} is negative; loss weights must be >= 0.")
