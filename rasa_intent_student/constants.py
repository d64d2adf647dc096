"""File names, config keys and defaults, defined once."""
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent

# Files of a student model directory.
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MANIFEST_FILE = "student.json"
MODEL_CARD_FILE = "README.md"
STUDENT_FILES = (MODEL_FILE, TOKENIZER_FILE, MANIFEST_FILE)

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

# The three routes and the 18 languages of shared/LABELS.md.
ROUTES = ("action", "recall", "other")
LANGUAGES = (
    "ko", "en", "ja", "zh", "es", "fr", "de", "pt", "it",
    "ru", "ar", "hi", "th", "vi", "id", "tr", "nl", "pl",
)
