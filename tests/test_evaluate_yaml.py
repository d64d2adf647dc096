"""`evaluate` on a Rasa bot's own NLU YAML (any intents), its intent_errors-style JSON, and its fail-fast extras check."""
import importlib.util
import json
import textwrap

import pytest

from rasa_intent_student.cli import main
from rasa_intent_student.evaluation.data import load_examples, misclassified

TRAIN_YML = """
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hey
    - hello there
    - good morning
    - hola
    - bonjour
- intent: goodbye
  examples: |
    - bye
    - see you later
    - good night
    - adiós
    - au revoir
- intent: order_food
  examples: |
    - order a [pizza](food)
    - I want a [burger]{"entity": "food"}
    - get me some [sushi](food:sushi) please
    - quiero una [pizza](food)
    - je voudrais des [pâtes](food)
- synonym: pizza
  examples: |
    - pizzas
- regex: zipcode
  examples: |
    - [0-9]{5}
"""

TEST_YML = """
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hi!
    - good evening
- intent: goodbye
  metadata:
    lang: es
  examples:
  - text: hasta luego
  - text: bye bye
    metadata:
      lang: en
- intent: order_food
  examples: |
    - can I order a [salad](food)?
    - una [hamburguesa](food) por favor
"""


@pytest.fixture
def bot(tmp_path):
    (tmp_path / "nlu.yml").write_text(textwrap.dedent(TRAIN_YML), encoding="utf-8")
    (tmp_path / "test.yml").write_text(textwrap.dedent(TEST_YML), encoding="utf-8")
    return tmp_path


def test_rasa_yaml_rows_any_intents_entities_stripped_lang_from_metadata(bot):
    train = load_examples(bot / "nlu.yml")
    assert len(train) == 15 and {e.label for e in train} == {"greet", "goodbye", "order_food"}
    assert ("I want a burger", "order_food") in [(e.text, e.label) for e in train]
    assert ("get me some sushi please", "order_food") in [(e.text, e.label) for e in train]
    assert {e.lang for e in train} == {"und"}
    test = {e.text: e.lang for e in load_examples(bot / "test.yml")}
    assert test["hasta luego"] == "es" and test["bye bye"] == "en" and test["hi!"] == "und"


def test_rasa_project_data_directory_skips_stories_and_rules(bot):
    data = bot / "data"
    data.mkdir()
    (bot / "nlu.yml").rename(data / "nlu.yml")
    (data / "rules.yml").write_text('version: "3.1"\nrules:\n- rule: r\n  steps:\n  - intent: greet\n')
    assert len(load_examples(data)) == 15


def test_malformed_yaml_intent_names_file_and_intent(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text('nlu:\n- intent: greet\n  examples: 3\n')
    with pytest.raises(ValueError, match=r"bad\.yml: intent 'greet': `examples` must be"):
        load_examples(bad)


def test_misclassified_rows_match_rasa_intent_errors():
    import numpy as np

    from rasa_intent_student.routes import RouteExample

    examples = [RouteExample("hi", "greet", "en"), RouteExample("bye", "goodbye", "en")]
    rows = misclassified(examples, ["goodbye", "greet"], np.array([[0.2, 0.8], [0.3, 0.7]]))
    assert rows == [{"text": "bye", "intent": "goodbye", "intent_prediction": {"name": "greet", "confidence": 0.7},
                     "lang": "en"}]


def test_evaluate_scores_a_yaml_bot_and_writes_errors(bot, student_dir, capsys):
    errors = bot / "out" / "intent_errors.json"
    code = main(["evaluate", "--train", str(bot / "nlu.yml"), "--data", str(bot / "test.yml"), "--model", str(student_dir),
                 "--threads", "1", "--errors", str(errors), "--json"])
    out = capsys.readouterr().out
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert result["n"] == 6 and result["labels"] == ["goodbye", "greet", "order_food"]
    assert set(result["per_language"]) == {"und", "es", "en"}
    assert result["accuracy"] >= 0.5
    rows = json.loads(errors.read_text(encoding="utf-8"))
    assert len(rows) == round(6 * (1 - result["accuracy"]))
    for row in rows:
        assert set(row) == {"text", "intent", "intent_prediction", "lang"}
        assert row["intent"] != row["intent_prediction"]["name"]
        assert 0.0 < row["intent_prediction"]["confidence"] <= 1.0


@pytest.mark.parametrize("missing, argv, message", [
    ("sklearn", [], "`evaluate` (the logistic-regression router) needs sklearn"),
    ("matplotlib", ["--plots", "plots"], "--plots needs matplotlib"),
    ("yaml", [], "Rasa NLU YAML data needs yaml"),
])
def test_missing_extra_fails_fast_naming_it(bot, monkeypatch, capsys, missing, argv, message):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == missing else real(name))
    code = main(["evaluate", "--train", str(bot / "nlu.yml"), "--data", str(bot / "test.yml"), *argv])
    err = capsys.readouterr().err
    assert code == 1
    assert message in err and 'pip install "rasa-intent-student[eval]"' in err
