"""Dynamic 8-bit (INT8) quantization of the whole student, word embedding included."""
import logging
from pathlib import Path
from typing import Dict, List

import numpy as np

from rasa_intent_student.constants import SENTENCE_OUTPUT, TOKEN_OUTPUT

logger = logging.getLogger(__name__)

# Gather: the word-embedding lookup is most of the model's bytes.
QUANTIZED_OPS = ["MatMul", "Gather"]


def quantize_int8(fp32_path: Path, int8_path: Path) -> Path:
    """Write an 8-bit copy of ``fp32_path``: weights per channel, activations quantized at run time.

    Weights are uint8 like the activations (U8U8): with int8 weights, x86 CPUs
    without VNNI can saturate in onnxruntime's u8 x s8 kernels, which cost the e5
    student visible INT8-vs-FP32 fidelity (see the factory report); per-channel
    scales helped further. The build records the resulting cosines in student.json.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8_path = Path(int8_path)
    int8_path.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(
        model_input=str(fp32_path),
        model_output=str(int8_path),
        op_types_to_quantize=QUANTIZED_OPS,
        weight_type=QuantType.QUInt8,
        per_channel=True,
        extra_options={"MatMulConstBOnly": True},
    )
    logger.info("Quantized %s -> %s (%.1f MB)", fp32_path, int8_path, int8_path.stat().st_size / 1e6)
    return int8_path


def quantized_initializers(path: Path) -> List[str]:
    """Names of 8-bit initializers in an ONNX file (to check the embedding was quantized)."""
    import onnx

    model = onnx.load(str(path))
    int8 = {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}
    return [t.name for t in model.graph.initializer if t.data_type in int8]


def largest_float_initializer(path: Path) -> int:
    """Element count of the largest float32 initializer left in the graph."""
    import onnx

    model = onnx.load(str(path))
    sizes = [int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    return max(sizes, default=0)


def mean_cosine(a: Dict[str, np.ndarray], b: Dict[str, np.ndarray], mask: np.ndarray) -> Dict[str, float]:
    """Cosines between two runs' sentence embeddings (raw and mean-centred) and between their real tokens."""

    def cos(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        x = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
        y = y / np.maximum(np.linalg.norm(y, axis=-1, keepdims=True), 1e-12)
        return (x * y).sum(-1)

    m = mask.astype(bool)
    # Centred on a's mean: the common direction all sentences share inflates raw cosines.
    mean = a[SENTENCE_OUTPUT].mean(0)
    return {
        "sentence_cosine_mean": float(cos(a[SENTENCE_OUTPUT], b[SENTENCE_OUTPUT]).mean()),
        "sentence_cosine_min": float(cos(a[SENTENCE_OUTPUT], b[SENTENCE_OUTPUT]).min()),
        "centered_cosine_mean": float(cos(a[SENTENCE_OUTPUT] - mean, b[SENTENCE_OUTPUT] - mean).mean()),
        "token_cosine_mean": float(cos(a[TOKEN_OUTPUT][m], b[TOKEN_OUTPUT][m]).mean()),
    }

