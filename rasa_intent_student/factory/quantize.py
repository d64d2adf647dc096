"""Dynamic 8-bit (INT8) quantization of the whole student, word embedding included."""
import logging
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from rasa_intent_student.constants import SENTENCE_OUTPUT, TOKEN_OUTPUT
from rasa_intent_student.errors import StudentError
from rasa_intent_student.pooling import row_cosines

logger = logging.getLogger(__name__)

# Gather: the word-embedding lookup is most of the model's bytes. Attention and EmbedLayerNormalization
# are the fused graph's (QAttention, QEmbedLayerNormalization; the latter holds the word embedding).
QUANTIZED_OPS = ["MatMul", "Gather", "Attention", "EmbedLayerNormalization"]

# Dynamic INT8 modes: name -> (weights signed, one scale per output channel, 7-bit weights).
QUANT_MODES: Dict[str, Tuple[bool, bool, bool]] = {
    "s8-channel-7bit": (True, True, True),
    "s8-channel": (True, True, False),
    "u8-channel": (False, True, False),
    "s8-tensor": (True, False, False),
    "u8-tensor": (False, False, False),
}
# Chosen on the pruned e5 student (layers 0 and 11, 55,000 pieces), fused graph: cosine to FP32 on the
# 234 verification sentences; p50 of session.run, one route dev utterance (median 13 tokens) per run,
# 1 thread, 300 runs, graphs taking turns, on a 2-core AMD EPYC VM (AVX512-VNNI) loaded by other jobs
# (load average 1-10, so ranges over repeated runs):
#   mode             cosine raw / centred   p50 ort 1.23 (runtime)   p50 ort 1.32 (factory)
#   s8-channel-7bit  0.99966 / 0.9947       0.71-0.84 ms             0.85-0.97 ms
#   s8-channel       0.99969 / 0.9952       0.71-0.85 ms             0.82-0.98 ms
#   u8-channel       0.99969 / 0.9952       0.73-0.84 ms             1.17-1.39 ms
#   s8-tensor        0.99835 / 0.9747       0.68-0.83 ms             0.81-0.94 ms
#   u8-tensor        0.99918 / 0.9872       0.70-0.83 ms             1.13-1.34 ms
#   unfused graph (the export before fusion), u8-channel: 0.82-0.99 ms (1.23), 1.30-1.62 ms (1.32)
# Per-tensor scales lose 3-5x more of the centred similarity structure for at most ~5% of speed.
# uint8 weights (U8U8 kernels) are 30-40% slower on recent onnxruntime, which the runtime allows.
# int8 weights go through u8 x s8 kernels whose 16-bit sums can saturate on x86 CPUs without VNNI
# (AVX2 only, e.g. AMD Zen 2/3); 7-bit weights (reduce_range) cannot, for 0.0005 of centred cosine here.
DEFAULT_QUANT_MODE = "s8-channel-7bit"


def quantize_int8(fp32_path: Path, int8_path: Path, mode: str = DEFAULT_QUANT_MODE) -> Path:
    """Write an 8-bit copy of ``fp32_path``: weights quantized per ``mode``, activations at run time.

    Works on the raw export (MatMul -> MatMulInteger, Gather) and on the fused graph (Attention ->
    QAttention, EmbedLayerNormalization -> QEmbedLayerNormalization, MatMul -> MatMulInteger). The
    build records the resulting cosines in student.json.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if mode not in QUANT_MODES:
        raise StudentError(f"Unknown quantization mode {mode!r}. Valid modes: {list(QUANT_MODES)}.")
    signed, per_channel, seven_bit = QUANT_MODES[mode]
    int8_path = Path(int8_path)
    int8_path.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(
        model_input=str(fp32_path),
        model_output=str(int8_path),
        op_types_to_quantize=QUANTIZED_OPS,
        weight_type=QuantType.QInt8 if signed else QuantType.QUInt8,
        per_channel=per_channel,
        reduce_range=seven_bit,
        # DefaultTensorType: ONNX shape inference cannot type the outputs of com.microsoft ops (fused graph).
        extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    logger.info("Quantized %s -> %s (%s, %.1f MB)", fp32_path, int8_path, mode, int8_path.stat().st_size / 1e6)
    return int8_path


def single_run_latency(
    paths: Dict[str, Path], feeds: Sequence[Dict[str, np.ndarray]], warmup: int = 20, threads: int = 1
) -> Dict[str, Dict[str, float]]:
    """p50 / p90 milliseconds of ``session.run`` per graph, one utterance per run, on ``threads`` threads.

    Graphs take turns on each utterance (in rotating order), so load on a shared machine falls on all
    of them alike. Sessions are set up as the runtime's StudentEncoder sets them up.
    """
    import onnxruntime as ort

    sessions = {}
    for name, path in paths.items():
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        wanted = {i.name for i in session.get_inputs()}
        sessions[name] = (session, wanted)
    names = list(sessions)
    times: Dict[str, List[float]] = {name: [] for name in names}
    for i, feed in enumerate(list(feeds[:warmup]) + list(feeds)):
        for name in names[i % len(names):] + names[: i % len(names)]:
            session, wanted = sessions[name]
            inputs = {k: v for k, v in feed.items() if k in wanted}
            start = time.perf_counter()
            session.run(None, inputs)
            if i >= min(warmup, len(feeds)):
                times[name].append(time.perf_counter() - start)
    return {
        name: {"p50_ms": round(float(np.median(t)) * 1e3, 4), "p90_ms": round(float(np.percentile(t, 90)) * 1e3, 4)}
        for name, t in times.items()
    }


def quantized_initializers(path: Path) -> List[str]:
    """Names of 8-bit initializers in an ONNX file (to check the embedding was quantized)."""
    import onnx

    model = onnx.load(str(path))
    int8 = {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}
    return [t.name for t in model.graph.initializer if t.data_type in int8]


def mean_cosine(a: Dict[str, np.ndarray], b: Dict[str, np.ndarray], mask: np.ndarray) -> Dict[str, float]:
    """Cosines between two runs' sentence embeddings (raw and mean-centred) and between their real tokens."""
    m = mask.astype(bool)
    # Centred on a's mean: the common direction all sentences share inflates raw cosines.
    mean = a[SENTENCE_OUTPUT].mean(0)
    return {
        "sentence_cosine_mean": float(row_cosines(a[SENTENCE_OUTPUT], b[SENTENCE_OUTPUT]).mean()),
        "sentence_cosine_min": float(row_cosines(a[SENTENCE_OUTPUT], b[SENTENCE_OUTPUT]).min()),
        "centered_cosine_mean": float(row_cosines(a[SENTENCE_OUTPUT] - mean, b[SENTENCE_OUTPUT] - mean).mean()),
        "token_cosine_mean": float(row_cosines(a[TOKEN_OUTPUT][m], b[TOKEN_OUTPUT][m]).mean()),
    }

