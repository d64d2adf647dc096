import json

import pytest
import torch
from tokenizers import Tokenizer

from rasa_intent_student.factory.prune import keep_layers, prune_tokenizer_json, prune_vocab
from rasa_intent_student.factory.teacher import load_teacher

pytestmark = pytest.mark.factory


def test_keep_layers_copies_the_chosen_teacher_layers(tiny_teacher, tmp_path):
    teacher = load_teacher(str(tiny_teacher), tmp_path).model
    original = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = keep_layers(teacher, [0, 3])
    assert student.config.num_hidden_layers == 2
    assert len(student.encoder.layer) == 2
    for new, old in ((0, 0), (1, 3)):
        for name, value in student.encoder.layer[new].state_dict().items():
            assert torch.equal(value, original[f"encoder.layer.{old}.{name}"]), name
    # the dropped layer 1 really differs from the kept layer 3
    assert not torch.equal(original["encoder.layer.1.output.dense.weight"], student.encoder.layer[1].output.dense.weight)


@pytest.mark.parametrize("layers", [[], [0, 4], [1, 1], [-1]])
def test_keep_layers_rejects_bad_indices(tiny_teachers, tmp_path, layers):
    model = load_teacher(str(tiny_teachers["bert"]), tmp_path).model
    with pytest.raises(ValueError, match="layer"):
        keep_layers(model, layers)


def test_prune_vocab_remaps_rows_and_tokenizes_kept_text_identically(tiny_teacher, tmp_path):
    teacher = load_teacher(str(tiny_teacher), tmp_path)
    full = Tokenizer.from_file(str(teacher.tokenizer_path))
    text = "the cat is sleeping on the sofa"
    text_ids = full.encode(text, add_special_tokens=False).ids
    n = full.get_vocab_size()
    # specials, every piece of the text, and every third piece of the rest
    keep = sorted({0, 1, 2, 3} | set(text_ids) | set(range(4, n, 3)))
    before = teacher.model.get_input_embeddings().weight.detach().clone()
    data = json.loads(teacher.tokenizer_path.read_text(encoding="utf-8"))
    pruned = prune_vocab(teacher.model, data, keep)
    path = tmp_path / "pruned.json"
    path.write_text(json.dumps(pruned, ensure_ascii=False), encoding="utf-8")
    small = Tokenizer.from_file(str(path))

    assert small.get_vocab_size() == len(keep) == teacher.model.config.vocab_size
    enc_small, enc_full = small.encode(text), full.encode(text)
    assert enc_small.tokens == enc_full.tokens  # same pieces, including <s> and </s>
    assert enc_small.ids == [keep.index(i) for i in enc_full.ids]
    after = teacher.model.get_input_embeddings().weight
    assert torch.equal(after, before[torch.tensor(keep)])
    for token in ("<s>", "<pad>", "</s>", "<unk>"):
        assert small.token_to_id(token) == full.token_to_id(token)


def test_prune_tokenizer_json_fixes_special_ids_everywhere(tiny_teachers):
    data = json.loads((tiny_teachers["bert"] / "tokenizer.json").read_text(encoding="utf-8"))
    data["padding"] = {"pad_id": 1, "pad_token": "<pad>", "strategy": "BatchLongest", "direction": "Right",
                       "pad_to_multiple_of": None, "pad_type_id": 0}
    n = len(data["model"]["vocab"])
    # a reordering that moves <s>, <pad> and </s>, then drops pieces 4..9
    keep = [1, 2, 0, 3] + list(range(10, n))
    out = prune_tokenizer_json(data, keep)
    assert out["model"]["unk_id"] == 3
    assert out["padding"]["pad_id"] == 0
    assert out["post_processor"]["special_tokens"]["<s>"]["ids"] == [2]
    assert out["post_processor"]["special_tokens"]["</s>"]["ids"] == [1]
    assert {t["content"]: t["id"] for t in out["added_tokens"]} == {"<s>": 2, "<pad>": 0, "</s>": 1, "<unk>": 3}
    assert [p for p, _ in out["model"]["vocab"][:4]] == ["<pad>", "</s>", "<s>", "<unk>"]
    assert data["model"]["unk_id"] == 3 and len(data["model"]["vocab"]) == n  # input untouched


def test_prune_vocab_refuses_to_drop_special_tokens(tiny_teachers, tmp_path):
    teacher = load_teacher(str(tiny_teachers["bert"]), tmp_path)
    data = json.loads(teacher.tokenizer_path.read_text(encoding="utf-8"))
    with pytest.raises(ValueError, match="special"):
        prune_vocab(teacher.model, data, [0, 1, 3] + list(range(4, 50)))
