"""`store_router.ExplicitStoreRouter`: an NLU step after RouteClassifier that sends explicit
"remember / note / save that …" requests (actions/store_phrases.py, 18 languages) to `action`.

The classifier learns routes from examples and can send a plainly stated fact ("remember that my
passport number is X123") to `recall` or `other`, which would drop the user's fact without a word.
A request that starts (or, in verb-final languages, ends) with an explicit store phrase and is not
a question is routed to `action` with confidence 1.0; everything else keeps the classifier's route.

Rasa imports this module by its name in config.yml: train and run Rasa in this directory, or put
this directory on PYTHONPATH (servers.py does).
"""
from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

try:  # imported as examples.memory_bot.store_router (tests)
    from .actions.store_phrases import is_explicit_store
except ImportError:  # imported by Rasa as the top-level module `store_router`
    from actions.store_phrases import is_explicit_store

STORE_ROUTE = "action"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class ExplicitStoreRouter(GraphComponent):
    """Overrides the route of explicit store requests; list it after the RouteClassifier."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"route": STORE_ROUTE}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.route = config.get("route", STORE_ROUTE)

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "ExplicitStoreRouter":
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            intent = message.get(INTENT) or {}
            if intent.get(INTENT_NAME_KEY) == self.route or not is_explicit_store(message.get(TEXT)):
                continue
            ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != self.route]
            chosen = {INTENT_NAME_KEY: self.route, PREDICTED_CONFIDENCE_KEY: 1.0}
            message.set(INTENT, chosen, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [chosen] + ranking, add_to_output=True)
        return messages
