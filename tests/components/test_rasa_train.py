"""Real `rasa train` runs with the components, loaded back through rasa.core.agent.Agent (slow: ~1 min each)."""
import asyncio
import shutil
import textwrap
from pathlib import Path

import pytest

ROUTES_NLU = """
version: "3.1"
nlu:
- intent: action
  examples: |
    - book a table for two at 7
    - set an alarm for 6 am
    - cancel my last order
    - remember that my locker code is 4411
    - order a large pizza
- intent: recall
  examples: |
    - what did I order last week?
    - when is my dentist appointment?
    - what was the name of the hotel I booked?
    - what did we talk about yesterday?
    - show me my last three orders
- intent: other
  examples: |
    - hi!
    - thanks a lot
    - tell me a joke
    - what is the capital of Peru?
    - who are you?
"""


def write_project(root: Path, config: str, nlu: str, domain: str = "", stories: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yml").write_text(textwrap.dedent(config))
    (root / "domain.yml").write_text(textwrap.dedent(domain) or 'version: "3.1"\n')
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "nlu.yml").write_text(textwrap.dedent(nlu))
    if stories:
        (root / "data" / "rules.yml").write_text(textwrap.dedent(stories))
    return root


def train(root: Path, nlu_only: bool) -> str:
    """`rasa train` (or `rasa train nlu`) of the project; returns the .tar.gz path."""
    if nlu_only:
        from rasa.model_training import train_nlu

        model = train_nlu(str(root / "config.yml"), str(root / "data"), str(root / "models"))
        assert model, "rasa train nlu produced no model"
        return model
    import rasa.api

    result = rasa.api.train(
        domain=str(root / "domain.yml"),
        config=str(root / "config.yml"),
        training_files=str(root / "data"),
        output=str(root / "models"),
        force_training=True,
    )
    assert result.code == 0 and result.model, result
    return result.model


def parse(model_path: str, texts):
    from rasa.core.agent import Agent

    agent = Agent.load(model_path)

    async def run():
        return [await agent.parse_message(text) for text in texts]

    return asyncio.run(run())


@pytest.mark.slow
def test_full_rasa_train_routes_many_languages_from_english_examples(tmp_path):
    """English-only examples + add_route_examples; a rule makes `rasa train` pass story messages too."""
    root = write_project(
        tmp_path / "bot",
        config="""
        language: xx
        pipeline:
          - name: rasa_intent_student.StudentFeaturizer
            add_route_examples: true
          - name: rasa_intent_student.RouteClassifier
          - name: FallbackClassifier
            threshold: 0.3
        policies:
          - name: RulePolicy
        assistant_id: test-bot
        """,
        nlu=ROUTES_NLU,
        domain="""
        version: "3.1"
        intents: [action, recall, other]
        responses:
          utter_other:
          - text: "ok"
        """,
        stories="""
        version: "3.1"
        rules:
        - rule: answer other
          steps:
          - intent: other
          - action: utter_other
        """,
    )
    model = train(root, nlu_only=False)
    cases = {
        "reserva una mesa para dos esta noche": "action",
        "stelle einen Wecker für 7 Uhr": "action",
        "¿qué pedí la semana pasada?": "recall",
        "지난주에 뭐 주문했지?": "recall",
        "bonjour, comment ça va ?": "other",
        "ありがとうございます": "other",
        "привет!": "other",
    }
    results = parse(model, list(cases))
    predicted = {r["text"]: r["intent"]["name"] for r in results}
    assert predicted == cases
    for result in results:
        confidences = [r["confidence"] for r in result["intent_ranking"]]
        assert abs(sum(confidences) - 1.0) < 1e-4
    empty = parse(model, [""])[0]
    assert empty["intent"]["name"] in (None, "nlu_fallback")


@pytest.mark.slow
def test_diet_pipeline_with_entities_from_a_self_contained_archive(tmp_path, student_dir):
    """WhitespaceTokenizer + StudentFeaturizer(model: a copy) + DIETClassifier; the copy is deleted before loading."""
    student = tmp_path / "student"
    shutil.copytree(student_dir, student)
    root = write_project(
        tmp_path / "bot",
        config=f"""
        language: en
        pipeline:
          - name: WhitespaceTokenizer
          - name: rasa_intent_student.StudentFeaturizer
            model: {student}
          - name: DIETClassifier
            epochs: 100
            number_of_transformer_layers: 1
            transformer_size: 64
            constrain_similarities: true
        assistant_id: diet-bot
        """,
        nlu="""
        version: "3.1"
        nlu:
        - intent: order
          examples: |
            - order a [pizza](food)
            - I want a [burger](food)
            - get me some [sushi](food) please
            - order [pasta](food) for dinner
            - can I have a [salad](food)
            - order a [burrito](food) now
        - intent: greet
          examples: |
            - hello
            - hi there
            - good morning
            - hey
        """,
    )
    model = train(root, nlu_only=True)
    shutil.rmtree(student)
    results = parse(model, ["order a pizza", "hello there"])
    assert [r["intent"]["name"] for r in results] == ["order", "greet"]
    assert all(0.0 <= r["intent"]["confidence"] <= 1.0 for r in results)
    # Entities come from the token-aligned sequence features.
    assert [(e["entity"], e["value"]) for e in results[0]["entities"]] == [("food", "pizza")]


# English and Spanish messages unlike ROUTES_NLU's examples; the bot has no Spanish of its own.
ADDED_ROUTE_CASES = {
    "remind me what I told you about my sister": "recall",
    "¿qué te dije ayer sobre mi hermana?": "recall",
    "pon una alarma para mañana a las siete": "action",
    "gracias, eres muy amable": "other",
}


@pytest.mark.slow
def test_diet_pipeline_after_a_tokenizer_learns_the_added_route_examples(tmp_path):
    """WhitespaceTokenizer + StudentFeaturizer(add_route_examples) + sparse featurizers + DIET (section 3's pipeline).

    The added examples get whitespace tokens, so every later component featurizes them (untokenized,
    they made DIET fail with "Number of examples differs for keys"). The bot's own examples are
    English; its Spanish comes from the route data only.
    """
    root = write_project(
        tmp_path / "bot",
        config="""
        language: en
        pipeline:
          - name: WhitespaceTokenizer
          - name: rasa_intent_student.StudentFeaturizer
            add_route_examples: [en, es]
          - name: RegexFeaturizer
          - name: LexicalSyntacticFeaturizer
          - name: CountVectorsFeaturizer
          - name: DIETClassifier
            epochs: 20
            number_of_transformer_layers: 1
            transformer_size: 64
            constrain_similarities: true
            random_seed: 1
        assistant_id: diet-routes-bot
        """,
        nlu=ROUTES_NLU,
    )
    results = parse(train(root, nlu_only=True), list(ADDED_ROUTE_CASES))
    assert {r["text"]: r["intent"]["name"] for r in results} == ADDED_ROUTE_CASES
