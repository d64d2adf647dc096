"""Distill the pruned student (teacher layers [0, 11]) towards the teacher's sentence embeddings.

Modules: ``config`` (settings and defaults), ``data`` (corpus rows and parallel pairs),
``targets`` (teacher embeddings and their cache), ``relations`` (the last layer's q/k/v for the
attention-relation target, and their cache), ``middle`` (the teacher's middle-layer token states for
the middle-layer target, and their cache), ``losses``, ``budget`` (schedule and time budget),
``loop`` (training), ``run`` (the whole run), ``pack`` (a run prepared here and trained on
another machine).
"""
from rasa_intent_student.factory.distill.config import DistillConfig
from rasa_intent_student.factory.distill.losses import distill_loss, embedding_mse, pairwise_cosine_loss
from rasa_intent_student.factory.distill.run import (
    CACHE_DIR,
    CHECKPOINT_FILE,
    CORPUS_FILE,
    CORPUS_MANIFEST_FILE,
    DISTILL_RECORD_FILE,
    HISTORY_FILE,
    RESULT_FILE,
    STATE_FILE,
    STUDENT_DIR,
    assemble_student,
    distill,
)
from rasa_intent_student.factory.distill.targets import teacher_cache_path, teacher_targets, tokenize

__all__ = [
    "DistillConfig", "distill", "assemble_student", "distill_loss", "embedding_mse", "pairwise_cosine_loss",
    "teacher_cache_path", "teacher_targets", "tokenize", "CACHE_DIR", "CHECKPOINT_FILE", "CORPUS_FILE",
    "CORPUS_MANIFEST_FILE", "DISTILL_RECORD_FILE", "HISTORY_FILE", "RESULT_FILE", "STATE_FILE", "STUDENT_DIR",
]
