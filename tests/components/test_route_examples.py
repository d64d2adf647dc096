"""StudentFeaturizer's ``add_route_examples``: the shipped route examples enter as training data, encoded once."""
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema, SchemaNode
from rasa.engine.storage.resource import Resource
from rasa.nlu.constants import SPACY_DOCS, TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.spacy_featurizer import SpacyFeaturizer
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from rasa_intent_student.components.classifier import RouteClassifier
from rasa_intent_student.components.featurizer import StudentFeaturizer
from rasa_intent_student.routes import load_routes

BOT = [("hi", "other"), ("hello", "other"), ("buy milk", "action"), ("order pizza", "action"),
       ("what is 2+2", "math"), ("sqrt of 9", "math")]


def bot_data(examples=BOT) -> TrainingData:
    return TrainingData([Message.build(text=text, intent=intent) for text, intent in examples])


def test_examples_are_added_for_the_bots_route_intents_only(create_featurizer, encoder, model_storage, execution_context):
    data = create_featurizer({"add_route_examples": ["en"]}).process_training_data(bot_data())
    added = data.intent_examples[len(BOT):]
    english = {(r.text, r.label) for r in load_routes("train", ["en"])}
    assert {m.get("intent") for m in added} == {"action", "other"}  # no recall: the bot has none
    assert {(m.get(TEXT), m.get("intent")) for m in added} <= english and len(added) > 50
    # Encoded by the featurizer's own student, like the bot's examples (INT8 batches differ a little).
    _, sentence = added[0].get_dense_features(TEXT)
    assert float(sentence.features[0] @ encoder.encode(added[0].get(TEXT))) > 0.99

    classifier = RouteClassifier.create(RouteClassifier.get_default_config(), model_storage, Resource("c"), execution_context)
    classifier.train(data)
    assert classifier.model.labels == ["action", "math", "other"]


def test_without_the_option_the_data_is_the_bots(create_featurizer):
    data = create_featurizer().process_training_data(bot_data())
    assert [m.get(TEXT) for m in data.intent_examples] == [text for text, _ in BOT]


def test_a_bot_without_route_intents_gets_a_warning_and_no_examples(create_featurizer):
    with pytest.warns(UserWarning, match="none of the intents"):
        data = create_featurizer({"add_route_examples": True}).process_training_data(
            bot_data([("hi", "greet"), ("bye", "goodbye")])
        )
    assert len(data.intent_examples) == 2


def test_texts_the_bot_has_are_not_added_twice(create_featurizer):
    first = load_routes("train", ["en"])[0]
    data = create_featurizer({"add_route_examples": ["en"]}).process_training_data(bot_data([(first.text, first.label)]))
    assert [m.get(TEXT) for m in data.intent_examples].count(first.text) == 1


def count_vectors(data: TrainingData, model_storage, execution_context) -> TrainingData:
    """CountVectorsFeaturizer trained on ``data``, then featurizing it, as in a pipeline."""
    config = {**CountVectorsFeaturizer.get_default_config(), "alias": "cvf"}
    vectorizer = CountVectorsFeaturizer.create(config, model_storage, Resource("cvf"), execution_context)
    vectorizer.train(data)
    return vectorizer.process_training_data(data)


def spans(tokens):
    return [(t.text, t.start, t.end) for t in tokens]


def test_after_a_tokenizer_the_added_examples_get_tokens_and_every_later_feature(
    create_featurizer, tokenizer, model_storage, execution_context
):
    data = tokenizer.process_training_data(bot_data())
    data = create_featurizer({"add_route_examples": ["en", "ja"]}).process_training_data(data)
    data = count_vectors(data, model_storage, execution_context)
    own, added = data.intent_examples[: len(BOT)], data.intent_examples[len(BOT):]
    japanese = {r.text for r in load_routes("train", ["ja"]) if r.label != "recall"}
    assert {m.get("intent") for m in added} == {"action", "other"} and japanese <= {m.get(TEXT) for m in added}
    for m in added:  # WhitespaceTokenizer's tokens; a Japanese text without spaces is one token
        assert spans(m.get(TOKENS_NAMES[TEXT])) == spans(tokenizer.tokenize(Message.build(text=m.get(TEXT)), TEXT))
    pizza = next(m for m in added if m.get(TEXT) == "ピザ一枚頼んで")
    assert spans(pizza.get(TOKENS_NAMES[TEXT])) == [("ピザ一枚頼んで", 0, 7)]
    # The intent tokens are the ones the bot's tokenizer gave its own examples of that intent.
    intent_tokens = {m.get(INTENT): spans(m.get(TOKENS_NAMES[INTENT])) for m in own}
    assert all(spans(m.get(TOKENS_NAMES[INTENT])) == intent_tokens[m.get(INTENT)] for m in added)
    for m in data.intent_examples:  # the student's and the count vectors' sequence features: one row per token
        dense, _ = m.get_dense_features(TEXT)
        sparse, _ = m.get_sparse_features(TEXT)
        assert dense.features.shape[0] == sparse.features.shape[0] == len(m.get(TOKENS_NAMES[TEXT]))


def test_a_featurizer_before_it_refuses_with_the_fix(create_featurizer, tokenizer, model_storage, execution_context):
    data = count_vectors(tokenizer.process_training_data(bot_data()), model_storage, execution_context)
    fix = r"after other featurizers \['cvf'\] .* Put StudentFeaturizer right after the tokenizer"
    with pytest.raises(InvalidConfigException, match=fix):
        create_featurizer({"add_route_examples": ["en"]}).process_training_data(data)


@pytest.mark.parametrize("spacy_featurizer", [True, False])
def test_spacy_docs_refuse_only_with_a_spacy_featurizer(student_dir, tokenizer, model_storage, spacy_featurizer):
    nodes = {"run_SpacyFeaturizer2": SchemaNode({}, SpacyFeaturizer, "create", "process_training_data", {})}
    context = ExecutionContext(GraphSchema(nodes if spacy_featurizer else {}), "m")
    config = {**StudentFeaturizer.get_default_config(), "model": str(student_dir), "add_route_examples": ["en"]}
    featurizer = StudentFeaturizer.create(config, model_storage, Resource("f"), context)
    data = tokenizer.process_training_data(bot_data())
    for m in data.intent_examples:
        m.set(SPACY_DOCS[TEXT], object())  # what SpacyNLP leaves on the bot's examples
    if spacy_featurizer:
        with pytest.raises(InvalidConfigException, match="Remove SpacyFeaturizer"):
            featurizer.process_training_data(data)
    else:
        assert all(m.get(TOKENS_NAMES[TEXT]) for m in featurizer.process_training_data(data).intent_examples)


@pytest.mark.parametrize(
    "value, message",
    [
        (["english"], r"add_route_examples=\['english'\] is invalid; use false, true, or a list of language codes"),
        ([], r"add_route_examples=\[\] is invalid"),
        ("yes", r"add_route_examples='yes' is invalid"),
    ],
)
def test_bad_values_raise(create_featurizer, value, message):
    with pytest.raises(InvalidConfigException, match=message):
        create_featurizer({"add_route_examples": value})


def test_fingerprint_covers_the_route_data_only_when_used(student_dir):
    plain = StudentFeaturizer.fingerprint_addon({"model": str(student_dir)})
    english = StudentFeaturizer.fingerprint_addon({"add_route_examples": ["en"], "model": str(student_dir)})
    spanish = StudentFeaturizer.fingerprint_addon({"add_route_examples": ["es"], "model": str(student_dir)})
    assert len({plain, english, spanish}) == 3 and english.startswith(plain)
