"""Load a teacher: the offline e5-small rebuild or any local sentence-transformers directory."""
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Tuple

from rasa_intent_student.constants import (
    DEFAULT_PREFIX,
    E5_OFFLINE_TEACHER,
    POOLING_MODES,
    TOKENIZER_FILE,
)
from rasa_intent_student.errors import StudentError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

logger = logging.getLogger(__name__)

@dataclass
class Teacher:
    """A transformer and what is needed to turn its tokens into sentence embeddings.

    Attributes:
        name: how the teacher was named (``e5-small-offline``, a path or a hub id).
        source: the model it is (e.g. ``intfloat/multilingual-e5-small``).
        model: the Hugging Face transformer (eval mode, eager attention).
        tokenizer_path: its ``tokenizer.json``.
        pooling: one of ``POOLING_MODES``.
        prefix: text the teacher expects before each query ("" if none).
        directory: the sentence-transformers directory it was loaded from.
    """

    name: str
    source: str
    model: "PreTrainedModel"
    tokenizer_path: Path
    pooling: str
    prefix: str
    directory: Path


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def pooling_mode(config: dict, path: Path) -> str:
    """The pooling a sentence-transformers Pooling config describes (old or new style), if the student can do it."""
    if "pooling_mode" in config:  # sentence-transformers >= 6
        mode = str(config["pooling_mode"])
    else:
        on = [k[len("pooling_mode_"):] for k, v in config.items() if k.startswith("pooling_mode_") and v]
        mode = "+".join(m.replace("_tokens", "").replace("_token", "") for m in on) or "mean"
    if mode not in POOLING_MODES or config.get("include_prompt", True) is False:
        raise StudentError(
            f"Pooling config {path} uses pooling '{mode}' (include_prompt={config.get('include_prompt', True)}), "
            f"which the student cannot reproduce; valid: {POOLING_MODES} over all tokens. Pick another teacher."
        )
    return mode


def read_st_layout(directory: Path) -> Tuple[Path, str, str]:
    """(transformer subdirectory, pooling mode, prompt prefix) of a sentence-transformers directory."""
    modules = _read_json(directory / "modules.json")
    transformer_dir, pooling = directory, "mean"  # a plain Hugging Face dir: mean pooling
    for module in modules if isinstance(modules, list) else []:
        kind, path = module.get("type", ""), module.get("path", "")
        if kind.endswith("Transformer"):
            transformer_dir = directory / path
        elif kind.endswith("Pooling"):
            pooling = pooling_mode(_read_json(directory / path / "config.json"), directory / path / "config.json")
    st_config = _read_json(directory / "config_sentence_transformers.json")
    prompts = st_config.get("prompts") or {}
    prefix = prompts.get(st_config.get("default_prompt_name") or "", "")
    return transformer_dir, pooling, prefix


def resolve_teacher_dir(name: str, work_dir: Path) -> Tuple[Path, str]:
    """Local directory of the teacher named ``name`` and the model it is; nothing is downloaded."""
    if name == E5_OFFLINE_TEACHER:
        from rasa_intent_student.factory.e5_offline import E5_TEACHER_NAME, build_e5_teacher_dir

        return build_e5_teacher_dir(Path(work_dir) / "teacher-e5-small", prefix=DEFAULT_PREFIX), E5_TEACHER_NAME
    path = Path(name).expanduser()
    if path.is_dir():
        return path, name
    try:  # a hub id already in the local Hugging Face cache
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True)), name
    except Exception as e:  # huggingface_hub raises several error types for "not cached"
        raise FileNotFoundError(
            f"Teacher '{name}' is neither '{E5_OFFLINE_TEACHER}', a local sentence-transformers directory, "
            f"nor a model in the local Hugging Face cache ({e.__class__.__name__}). "
            f"Use --teacher {E5_OFFLINE_TEACHER} or a path to a downloaded model."
        ) from None


def load_teacher(name: str, work_dir: Path, prefix: Optional[str] = None) -> Teacher:
    """Load the teacher's transformer, tokenizer.json path, pooling and prefix.

    Args:
        name: ``e5-small-offline`` or a sentence-transformers directory / cached hub id.
        work_dir: where the offline teacher is rebuilt (reused when already there).
        prefix: override of the prompt prefix read from the teacher's config.
    """
    from transformers import AutoModel

    directory, source = resolve_teacher_dir(name, Path(work_dir))
    transformer_dir, pooling, st_prefix = read_st_layout(directory)
    tokenizer_path = transformer_dir / TOKENIZER_FILE
    if not tokenizer_path.is_file():
        raise FileNotFoundError(
            f"{TOKENIZER_FILE} not found in {transformer_dir}: the student needs a fast (tokenizers) tokenizer. "
            "Save the teacher with a fast tokenizer (tokenizer.save_pretrained) and retry."
        )
    model = AutoModel.from_pretrained(str(transformer_dir), attn_implementation="eager")
    model.eval()
    logger.info("Teacher %s: %s, %d layers, pooling=%s", name, type(model).__name__, model.config.num_hidden_layers, pooling)
    return Teacher(
        name=name,
        source=source,
        model=model,
        tokenizer_path=tokenizer_path,
        pooling=pooling,
        prefix=st_prefix if prefix is None else prefix,
        directory=directory,
    )
