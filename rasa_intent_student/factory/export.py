"""Export a transformer + mean pooling to ONNX, fuse it for onnxruntime, and check it against PyTorch."""
import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Sequence

import numpy as np

from rasa_intent_student.constants import (
    ATTENTION_MASK,
    INPUT_IDS,
    ONNX_OPSET,
    ONNX_PARITY_ATOL,
    SENTENCE_OUTPUT,
    TOKEN_OUTPUT,
)
from rasa_intent_student.errors import StudentError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

logger = logging.getLogger(__name__)


def _wrapper(model: "PreTrainedModel", pooling: str):
    import torch

    class StudentGraph(torch.nn.Module):
        """input_ids, attention_mask -> token embeddings (b, s, d), pooled sentence (b, d), not normalized."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
            # Explicit zeros: the graph then does not depend on a buffered token_type_ids slice.
            tokens = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)
            ).last_hidden_state  # (batch, seq, dim)
            if pooling == "cls":
                return tokens, tokens[:, 0]
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)  # (batch, seq, 1)
            sentence = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return tokens, sentence

    return StudentGraph().eval()


def torch_forward(model: "PreTrainedModel", pooling: str, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Run the PyTorch model the way the ONNX graph does; returns both outputs as numpy."""
    import torch

    with torch.no_grad():
        tokens, sentence = _wrapper(model, pooling)(
            torch.from_numpy(feeds[INPUT_IDS]), torch.from_numpy(feeds[ATTENTION_MASK])
        )
    return {TOKEN_OUTPUT: tokens.numpy(), SENTENCE_OUTPUT: sentence.numpy()}


def export_onnx(model: "PreTrainedModel", path: Path, pooling: str = "mean", opset: int = ONNX_OPSET) -> Path:
    """Write an FP32 ONNX graph with dynamic batch and sequence axes.

    Inputs: int64 ``input_ids`` and ``attention_mask`` (batch, seq).
    Outputs: ``token_embeddings`` (batch, seq, dim) and ``sentence_embedding`` (batch, dim).
    """
    import torch

    model = model.eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy_ids = torch.tensor([[0, 10, 11, 12, 2], [0, 13, 2, 1, 1]], dtype=torch.long)
    dummy_ids = dummy_ids.clamp(max=model.config.vocab_size - 1)
    dummy_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.long)
    # torch >= 2.9 defaults to the dynamo exporter, which needs onnxscript (not a factory
    # dependency). The legacy TorchScript exporter writes one self-contained file.
    torch.onnx.export(
        _wrapper(model, pooling),
        (dummy_ids, dummy_mask),
        str(path),
        input_names=[INPUT_IDS, ATTENTION_MASK],
        output_names=[TOKEN_OUTPUT, SENTENCE_OUTPUT],
        dynamic_axes={
            INPUT_IDS: {0: "batch", 1: "seq"},
            ATTENTION_MASK: {0: "batch", 1: "seq"},
            TOKEN_OUTPUT: {0: "batch", 1: "seq"},
            SENTENCE_OUTPUT: {0: "batch"},
        },
        opset_version=opset,
        do_constant_folding=True,
        dynamo=False,
    )
    logger.info("Exported %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path


# Operators of onnxruntime's transformer fusions (com.microsoft domain), before and after INT8 quantization.
FUSED_OP_TYPES = (
    "Attention",
    "QAttention",
    "MultiHeadAttention",
    "EmbedLayerNormalization",
    "QEmbedLayerNormalization",
    "SkipLayerNormalization",
    "BiasGelu",
    "FastGelu",
    "Gelu",
)
ATTENTION_OP_TYPES = ("Attention", "QAttention", "MultiHeadAttention")


def attention_shape(model: "PreTrainedModel") -> Dict[str, int]:
    """``num_heads`` and ``hidden_size`` of a Hugging Face encoder, as onnxruntime's optimizer wants them."""
    config = model.config
    return {"num_heads": int(config.num_attention_heads), "hidden_size": int(config.hidden_size)}


def graph_ops(path: Path) -> Dict[str, int]:
    """Op type -> node count of an ONNX file's main graph."""
    import onnx

    return dict(Counter(node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node))


def graph_interface(path: Path) -> Dict[str, Any]:
    """Input names with element types, and output names, of an ONNX file."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return {
        "inputs": [(i.name, i.type.tensor_type.elem_type) for i in graph.input],
        "outputs": [o.name for o in graph.output],
    }


def fuse_onnx(fp32_path: Path, fused_path: Path, num_heads: int, hidden_size: int) -> Dict[str, int]:
    """Write ``fp32_path`` with onnxruntime's BERT fusions applied; returns the fused operator counts.

    ``onnxruntime.transformers.optimizer.optimize_model`` (model_type ``bert``) replaces the
    embedding sum + LayerNorm by ``EmbedLayerNormalization`` (BERT-style positions only; the
    XLM-R cumsum positions stay unfused), each self-attention block by one ``Attention``, residual
    + LayerNorm by ``SkipLayerNormalization`` and bias + GELU by ``BiasGelu``: the e5 student goes
    from 244 nodes to 30. Python fusions only (``opt_level=0``): no onnxruntime-level rewrite is
    serialized, so the graph keeps plain opset-17 ops plus com.microsoft ones that any recent
    onnxruntime runs. Inputs stay int64 (Casts to int32 are inside the graph) and both outputs
    keep their names; a fusion that changed either raises.
    """
    from onnxruntime.transformers.optimizer import optimize_model

    fused_path = Path(fused_path)
    fused_path.parent.mkdir(parents=True, exist_ok=True)
    optimized = optimize_model(
        str(fp32_path), model_type="bert", num_heads=num_heads, hidden_size=hidden_size, opt_level=0
    )
    stats = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
    optimized.save_model_to_file(str(fused_path))
    before, after = graph_interface(fp32_path), graph_interface(fused_path)
    if before != after:
        raise StudentError(f"Fusing {fp32_path} changed the graph interface from {before} to {after}.")
    logger.info("Fused %s -> %s: %s", fp32_path, fused_path, stats)
    return stats


def onnx_forward(path: Path, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    wanted = {i.name for i in session.get_inputs()}
    return dict(zip(names, session.run(names, {k: v for k, v in feeds.items() if k in wanted})))


def make_feeds(tokenizer_path: Path, texts: Sequence[str], prefix: str = "", max_length: int = 128) -> Dict[str, np.ndarray]:
    """int64 input_ids / attention_mask for ``texts``, padded like the runtime encoder pads."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.enable_truncation(max_length=max_length)
    pad_id = tokenizer.token_to_id("<pad>")
    tokenizer.enable_padding(pad_id=pad_id if pad_id is not None else 0, pad_token="<pad>")
    encodings = tokenizer.encode_batch([prefix + t for t in texts])
    return {
        INPUT_IDS: np.array([e.ids for e in encodings], dtype=np.int64),
        ATTENTION_MASK: np.array([e.attention_mask for e in encodings], dtype=np.int64),
    }


def make_single_feeds(
    tokenizer_path: Path, texts: Sequence[str], prefix: str = "", max_length: int = 128
) -> List[Dict[str, np.ndarray]]:
    """One batch-of-one feed per text, as the runtime encoder builds them for a single utterance."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.enable_truncation(max_length=max_length)
    feeds = []
    for text in texts:
        encoding = tokenizer.encode(prefix + text)
        feeds.append({
            INPUT_IDS: np.array([encoding.ids], dtype=np.int64),
            ATTENTION_MASK: np.array([encoding.attention_mask], dtype=np.int64),
        })
    return feeds


def check_parity(
    model: "PreTrainedModel", path: Path, feeds: Dict[str, np.ndarray], pooling: str = "mean", atol: float = ONNX_PARITY_ATOL
) -> float:
    """Max |ONNX - PyTorch| over real tokens of both outputs; raises if above ``atol``."""
    expected, got = torch_forward(model, pooling, feeds), onnx_forward(path, feeds)
    mask = feeds[ATTENTION_MASK].astype(bool)
    diff = max(
        float(np.abs(expected[TOKEN_OUTPUT][mask] - got[TOKEN_OUTPUT][mask]).max()),
        float(np.abs(expected[SENTENCE_OUTPUT] - got[SENTENCE_OUTPUT]).max()),
    )
    if diff > atol:
        raise StudentError(f"ONNX export of {path} differs from PyTorch by {diff:.2e} > atol {atol:.0e}.")
    return diff
