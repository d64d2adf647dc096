"""One action that answers with the route the message took."""
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher


class ActionShowRoute(Action):
    """Reply with the route (intent) and its confidence."""

    def name(self) -> Text:
        return "action_show_route"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        intent = (tracker.latest_message or {}).get("intent") or {}
        route, confidence = intent.get("name") or "unknown", float(intent.get("confidence") or 0.0)
        dispatcher.utter_message(text=f"route: {route} ({confidence:.2f})")
        return []
