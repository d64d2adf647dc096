"""Factory fixtures (run in .venv-factory): tiny random teachers saved as sentence-transformers dirs."""
import json
from pathlib import Path
from typing import Dict

import pytest

from rasa_intent_student.factory.sentences import RETRIEVAL, check_sentences

pytestmark = pytest.mark.factory

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
EXTRA_TEXT = [
    "book a table for two at seven",
    "what did I order last week?",
    "set an alarm for six am",
    "remember that my locker code is 4411",
    "hello there, thanks a lot",
    "¿qué pedí ayer?",
    "Ich möchte meine Bestellung stornieren.",
    "สวัสดีครับ ขอบคุณมาก",
]


def tiny_corpus():
    return check_sentences() + [t for triple in RETRIEVAL for t in triple] + EXTRA_TEXT


def write_tiny_tokenizer(path: Path) -> int:
    """Train a small Unigram tokenizer shaped like XLM-R's (Metaspace, <s> A </s>). Returns its size."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(vocab_size=600, special_tokens=SPECIALS, unk_token="<unk>", shrinking_factor=0.9)
    tok.train_from_iterator(tiny_corpus() * 3, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tok.save(str(path))
    assert [tok.token_to_id(s) for s in SPECIALS] == [0, 1, 2, 3]
    return tok.get_vocab_size()


def write_tiny_teacher(directory: Path, kind: str, prefix: str) -> Path:
    """A random 4-layer, 32-dim BERT or XLM-R saved as a sentence-transformers directory."""
    import torch
    from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

    from rasa_intent_student.factory.stdir import write_hf_tokenizer_config, write_st_metadata

    directory.mkdir(parents=True)
    vocab = write_tiny_tokenizer(directory / "tokenizer.json")
    torch.manual_seed(0)
    dims = dict(vocab_size=vocab, hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64, pad_token_id=1)
    if kind == "bert":
        model = BertModel(BertConfig(max_position_embeddings=128, type_vocab_size=2, **dims))
    else:  # XLM-R offsets positions by padding_idx + 1, as paraphrase-multilingual-MiniLM does
        model = XLMRobertaModel(XLMRobertaConfig(max_position_embeddings=130, type_vocab_size=1, **dims))
    with torch.no_grad():  # larger than the 0.02 init, so layers visibly differ from each other
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0, 0.2)
    model.save_pretrained(str(directory))
    write_hf_tokenizer_config(directory, model_max_length=128)
    write_st_metadata(directory, dim=32, prefix=prefix, max_seq_length=128)
    return directory


@pytest.fixture(scope="session")
def tiny_teachers(tmp_path_factory) -> Dict[str, Path]:
    root = tmp_path_factory.mktemp("teachers")
    return {
        "bert": write_tiny_teacher(root / "bert", "bert", prefix="query: "),
        "xlmr": write_tiny_teacher(root / "xlmr", "xlmr", prefix=""),
    }


@pytest.fixture(params=["bert", "xlmr"])
def tiny_teacher(request, tiny_teachers) -> Path:
    return tiny_teachers[request.param]


@pytest.fixture(scope="session")
def route_dir(tmp_path_factory) -> Path:
    """A tiny route data set: train and dev rows for en, de and th."""
    root = tmp_path_factory.mktemp("routes")
    rows = {
        "train": {
            "en": [("book a table for two", "action"), ("what did I order last week?", "recall"), ("hello there!", "other")],
            "de": [("Bitte storniere meine Bestellung.", "action"), ("Was habe ich gestern bestellt?", "recall")],
            "th": [("สวัสดีครับ", "other")],
        },
        "dev": {
            "en": [("set an alarm for six", "action"), ("thanks a lot", "other")],
            "de": [("Wie ist das Wetter heute?", "other")],
            "th": [("ขอบคุณมาก", "other")],
        },
    }
    for split, langs in rows.items():
        (root / split).mkdir()
        for lang, items in langs.items():
            lines = [json.dumps({"text": t, "label": label, "lang": lang}, ensure_ascii=False) for t, label in items]
            (root / split / f"{lang}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def e5_teacher_dir(tmp_path_factory) -> Path:
    """The real multilingual-e5-small, rebuilt offline (about 30 s; slow tests only)."""
    from rasa_intent_student.factory.e5_offline import build_e5_teacher_dir

    return build_e5_teacher_dir(tmp_path_factory.mktemp("e5") / "teacher")
