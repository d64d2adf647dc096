"""The middle-layer target: the student's first layer towards a teacher layer further up (TinyBERT's layer mapping).

The student is the teacher's layers [0, 11]: its second layer starts as the teacher's last one, which
was trained on what the teacher's layer 10 puts out, while the student feeds it what layer 0 puts
out. The token and sentence targets reach the first layer only through the second. This target
trains the first layer's token states directly towards the teacher's after ``middle_layer``
(relative squared error, as the token target), so the first layer learns what the teacher's
skipped layers did. The teacher's states of that layer are cached per token.
"""
from pathlib import Path
from rasa_intent_student.factory.distill.targets import TokenCapture, layer_output

STUDENT_LAYER = 0  # the student layer the target trains: its first, whose output feeds the teacher's last layer


def middle_cache_path(sentence_cache: Path, layer: int) -> Path:
    """The cache of the teacher's layer ``layer`` token states beside a sentence cache (same key)."""
    return sentence_cache.with_name(sentence_cache.stem.replace("teacher-", f"teacher-layer{layer}-") + ".npz")


def layer_capture(sentence_cache: Path, layer: int) -> TokenCapture:
    """The token states that the teacher's layer ``layer`` (0-based) puts out, cached beside ``sentence_cache``."""
    return TokenCapture(middle_cache_path(sentence_cache, layer), lambda teacher: layer_output(teacher, layer))
