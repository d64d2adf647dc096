"""File names, config keys and defaults, defined once."""
import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent

# Files of a student model directory.
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MANIFEST_FILE = "student.json"
MODEL_CARD_FILE = "README.md"
STUDENT_FILES = (MODEL_FILE, TOKENIZER_FILE, MANIFEST_FILE)
# Optional: per-language mean embeddings (``language_offsets.py``), named by student.json's ``language_offsets``.
LANGUAGE_OFFSETS_FILE = "language_offsets.npy"
STUDENT_OPTIONAL_FILES = (LANGUAGE_OFFSETS_FILE,)
# Softmax temperature over cosines to the language directions: a clearly written text gets its own
# language's offset almost alone, a short or mixed one a blend.
LANGUAGE_OFFSETS_TEMPERATURE = 0.05

DEFAULT_MODEL_DIR = PACKAGE_DIR / "models" / "default"
ROUTE_DATA_DIR = PACKAGE_DIR / "data" / "routes"
ROUTE_SPLITS = ("train", "dev")

# ONNX graph interface.
INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
TOKEN_TYPE_IDS = "token_type_ids"
SENTENCE_OUTPUT = "sentence_embedding"
TOKEN_OUTPUT = "token_embeddings"

# Encoding defaults.
DEFAULT_MAX_SEQ_LENGTH = 128
DEFAULT_BATCH_SIZE = 32
DEFAULT_PREFIX = "query: "
# Characters kept before tokenizing: far more than max_seq_length tokens need,
# so a megabyte of text does not cost a megabyte of tokenization.
CHARS_PER_TOKEN_CAP = 32

POOLING_MODES = ("mean", "cls")
QUANTIZATION_MODES = ("none", "int8-dynamic")

# The three routes and the 18 languages of docs/ROUTES.md.
ROUTES = ("action", "recall", "other")
LANGUAGES = (
    "ko", "en", "ja", "zh", "es", "fr", "de", "pt", "it",
    "ru", "ar", "hi", "th", "vi", "id", "tr", "nl", "pl",
)

# Student factory (rasa-intent-student build).
E5_OFFLINE_TEACHER = "e5-small-offline"
DEFAULT_LAYERS_KEPT = (0, 11)
DEFAULT_VOCAB_SIZE = 55000
# The vocabulary keeps the pieces of the dialogue messages (factory.parallel) ahead of the frequency lists: those of
# the default recipe's 1,320 messages (23k pieces, all kept; general words fill the rest), even for a student
# distilled on the 960 staged ones (dialogue-next) as well. Keeping the 45k pieces of both left no room for general
# words; keeping those seen at least 3 times lost in-language few-shot intents (0.803 vs 0.806-0.807 with these,
# artifacts/results/bench-c2r.txt and bench-sv.txt). `build --dialogue-sources/--dialogue-min-count` change them.
DIALOGUE_VOCAB_SOURCES = ("dialogue",)
DIALOGUE_MIN_COUNT = 1
MAX_DEFAULT_MODEL_BYTES = 24 * 2**20  # the shipped INT8 model.onnx must fit in 24 MiB
INT8_COSINE_FLOOR = 0.98  # mean cosine, INT8 vs FP32 student, on multilingual sentences
ONNX_PARITY_ATOL = 1e-4  # FP32 ONNX vs PyTorch
ONNX_OPSET = 17

# The router: class-balanced logistic regression on unit-norm sentence embeddings, shared by
# RouteClassifier and `evaluate`. Weak L2 (large C), as the routes are close in embedding space.
ROUTER_C = 30.0
ROUTER_MAX_ITER = 1000
ROUTER_CALIBRATION_FOLDS = 5  # out-of-fold logits the softmax temperature is fitted on
ROUTER_RANDOM_STATE = 42

# Rasa component config keys (StudentFeaturizer, RouteClassifier).
CONFIG_MODEL = "model"
CONFIG_BATCH_SIZE = "batch_size"
CONFIG_MAX_SEQ_LENGTH = "max_seq_length"
CONFIG_THREADS = "threads"
CONFIG_ADD_ROUTE_EXAMPLES = "add_route_examples"
CONFIG_LANGUAGE_NEUTRAL = "language_neutral"
# Position embeddings of the e5/XLM-R family end at 512.
MAX_SEQ_LENGTH_LIMIT = 512
CLASSIFIER_WEIGHTS_FILE = "route_classifier.npz"
CLASSIFIER_META_FILE = "route_classifier.json"

# Evaluation and benchmarks (rasa-intent-student evaluate / bench).
QUALITY_SHOTS = 8  # training examples per intent, as in few-shot MTEB classification
QUALITY_SEEDS = (0, 1, 2, 3, 4)
QUALITY_MAX_PER_INTENT = 32  # sentences expanded per intent and language (shots + test)
BENCH_LATENCY_RUNS = 300  # single-utterance encodes per model
BENCH_WARMUP_RUNS = 20
BENCH_BATCH_SIZE = 32
# Runs, reference models and caches: ./artifacts of the working directory (never inside site-packages),
# or $RASA_INTENT_STUDENT_ARTIFACTS.
ARTIFACTS_ENV = "RASA_INTENT_STUDENT_ARTIFACTS"
ARTIFACTS_DIR = Path(os.environ.get(ARTIFACTS_ENV) or "artifacts")

# Distillation (rasa-intent-student distill).
DISTILL_OUTPUT_DIR = ARTIFACTS_DIR / "distill"
DISTILL_RECORD_FILE = "distill.json"  # in a distilled student-st/: what `build` copies into the manifest and card
DISTILL_MAX_SEQ_LENGTH = 64  # corpus texts are short; attention cost grows with the square of this

# The factory's scratch space (`build --work-dir`, `reference --work-dir`): teacher rebuild, FP32 ONNX and student.
FACTORY_WORK_DIR = Path("build") / "factory"
# FP32 reference encoders for `bench` (rasa-intent-student reference).
REFERENCE_TEACHER_DIR = ARTIFACTS_DIR / "teacher-fp32"
REFERENCE_STUDENT_FP32_DIR = ARTIFACTS_DIR / "student-fp32"
BENCH_CACHE_DIR = ARTIFACTS_DIR / "cache"
DISTILL_TEXTS_PER_LANGUAGE = 2400  # distillation corpus size per language
DISTILL_DJANGO_PER_LANGUAGE = 1000  # of which at most this many Django catalog strings
# StudentFeaturizer threads: one message is too small to gain from more, and spinning
# onnxruntime threads compete with Rasa's own on a small CPU (p50 parse 7.5 ms vs 40 ms, 2 busy cores).
DEFAULT_FEATURIZER_THREADS = 1
