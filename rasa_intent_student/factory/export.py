"""Export a transformer + mean pooling to ONNX, and check it against PyTorch."""
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Sequence

import numpy as np

from rasa_intent_student.constants import (
    ATTENTION_MASK,
    INPUT_IDS,
    ONNX_OPSET,
    ONNX_PARITY_ATOL,
    SENTENCE_OUTPUT,
    TOKEN_OUTPUT,
)

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
        raise ValueError(f"ONNX export of {path} differs from PyTorch by {diff:.2e} > atol {atol:.0e}.")
    return diff
