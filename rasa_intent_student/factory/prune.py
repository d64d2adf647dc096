"""Model surgery: keep some transformer layers, keep some vocabulary rows."""
import copy
import logging
from typing import TYPE_CHECKING, Any, Dict, List, Sequence
from rasa_intent_student.errors import StudentError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

logger = logging.getLogger(__name__)


def _encoder_layers(model: "PreTrainedModel"):
    encoder = getattr(model, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if layers is None:
        raise StudentError(
            f"{type(model).__name__} has no encoder.layer list; keep_layers supports BERT-like encoders "
            "(BertModel, XLMRobertaModel)."
        )
    return encoder, layers


def keep_layers(model: "PreTrainedModel", layers: Sequence[int]) -> "PreTrainedModel":
    """Keep only the given encoder layers, in the given order (edits ``model`` in place).

    Args:
        model: a BERT-like Hugging Face model.
        layers: teacher layer indices, e.g. ``[0, 11]``.

    Returns:
        the same model with ``len(layers)`` layers and ``config.num_hidden_layers`` updated.
    """
    import torch

    encoder, old = _encoder_layers(model)
    if not layers:
        raise StudentError("layers is empty; keep at least one layer, e.g. [0, 11].")
    bad = [i for i in layers if not 0 <= i < len(old)]
    if bad or len(set(layers)) != len(layers):
        raise StudentError(f"Invalid layers {list(layers)}: need distinct indices in 0..{len(old) - 1}.")
    kept = torch.nn.ModuleList()
    for new_idx, old_idx in enumerate(layers):
        layer = copy.deepcopy(old[old_idx])
        for module in layer.modules():  # attention modules remember their index for caches
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_idx
        for (name, a), (_, b) in zip(old[old_idx].state_dict().items(), layer.state_dict().items()):
            assert a.shape == b.shape, f"layer {old_idx} {name}: {tuple(a.shape)} != {tuple(b.shape)}"
        kept.append(layer)
    encoder.layer = kept
    model.config.num_hidden_layers = len(layers)
    return model


def _remap(old_id: int, new_ids: Dict[int, int], what: str) -> int:
    if old_id not in new_ids:
        raise StudentError(f"{what} id {old_id} is not among the kept pieces; always keep special tokens.")
    return new_ids[old_id]


def prune_tokenizer_json(tokenizer: Dict[str, Any], keep_ids: Sequence[int]) -> Dict[str, Any]:
    """A tokenizer.json (dict) whose Unigram vocab is ``keep_ids`` in order, with ids fixed everywhere.

    Normalizer, pre-tokenizer and decoder stay the same; piece scores stay the original ones.
    """
    model = tokenizer.get("model", {})
    if model.get("type") != "Unigram":
        raise StudentError(f"prune_vocab supports Unigram (SentencePiece) tokenizers, not {model.get('type')!r}.")
    vocab = model["vocab"]
    new_ids = {old: new for new, old in enumerate(keep_ids)}
    out = copy.deepcopy({k: v for k, v in tokenizer.items() if k != "model"})
    out["model"] = {**{k: v for k, v in model.items() if k != "vocab"}, "vocab": [vocab[i] for i in keep_ids]}
    if model.get("unk_id") is not None:
        out["model"]["unk_id"] = _remap(model["unk_id"], new_ids, "unk")
    for token in out.get("added_tokens") or []:
        token["id"] = _remap(token["id"], new_ids, f"added token {token['content']!r}")
    post = out.get("post_processor") or {}
    processors = post.get("processors", [post]) if post else []
    for proc in processors:
        for special in (proc.get("special_tokens") or {}).values():
            special["ids"] = [_remap(i, new_ids, f"special token {special.get('id')!r}") for i in special["ids"]]
        for key in ("cls", "sep"):  # RobertaProcessing / BertProcessing store [token, id]
            if isinstance(proc.get(key), list):
                proc[key][1] = _remap(proc[key][1], new_ids, key)
    if out.get("padding"):
        out["padding"]["pad_id"] = _remap(out["padding"]["pad_id"], new_ids, "padding")
    return out


def prune_vocab(model: "PreTrainedModel", tokenizer: Dict[str, Any], keep_ids: Sequence[int]) -> Dict[str, Any]:
    """Keep only the embedding rows of ``keep_ids`` and return the matching tokenizer.json dict.

    Args:
        model: a Hugging Face model with ``get_input_embeddings()`` (edited in place).
        tokenizer: the teacher's tokenizer.json, parsed.
        keep_ids: teacher token ids to keep, in the order they get in the student
            (sorted ids keep special tokens at their usual places).

    Returns:
        the pruned tokenizer.json as a dict.
    """
    import torch

    keep: List[int] = [int(i) for i in keep_ids]
    if len(set(keep)) != len(keep):
        raise StudentError("keep_ids has duplicates; pass each token id once.")
    pruned = prune_tokenizer_json(tokenizer, keep)
    old = model.get_input_embeddings()
    rows, dim = old.weight.shape
    if max(keep) >= rows:
        raise StudentError(f"keep_ids reaches id {max(keep)} but the embedding has only {rows} rows.")
    new_ids = {o: n for n, o in enumerate(keep)}
    pad = model.config.pad_token_id
    new_pad = new_ids.get(pad) if pad is not None else None
    emb = torch.nn.Embedding(len(keep), dim, padding_idx=new_pad)
    with torch.no_grad():
        emb.weight.copy_(old.weight[torch.tensor(keep)])
    assert emb.weight.shape == (len(keep), dim)
    model.set_input_embeddings(emb)
    model.config.vocab_size = len(keep)
    if pad is not None:
        model.config.pad_token_id = new_pad
    embeddings = getattr(model, "embeddings", None)
    if embeddings is not None and hasattr(embeddings, "padding_idx") and embeddings.padding_idx is not None:
        # XLM-R derives position ids from the pad id.
        embeddings.padding_idx = _remap(embeddings.padding_idx, new_ids, "padding_idx")
    logger.info("Vocabulary pruned: %d -> %d rows", rows, len(keep))
    return pruned
