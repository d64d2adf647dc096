"""The two memory actions: store what the user asked to be done, and recall it by meaning."""
import datetime
import functools
import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from . import settings
from .embedding import MemoryEncoder
from .memory import MAX_EVENT_CHARS, MemoryBackend, open_store
from .store_phrases import is_explicit_store

logger = logging.getLogger(__name__)

# Replies quote the user's text; a long text is shown cut to this many characters.
QUOTE_CHARS = 120
# The conversation id Rasa uses when a channel names no sender: nobody's memory.
ANONYMOUS_SENDERS = {"default"}

NO_SENDER = "I can't tell who you are, so I can't use your memory. Please sign in and try again."
NO_TEXT = "I didn't get any text. What should I do?"
NO_QUERY = "I didn't get any text. What should I look up for you?"
STORE_FAILED = "Sorry, I couldn't save that right now; nothing you stored before was lost."
LOOKUP_FAILED = "Sorry, I can't search your memory right now."
NOTHING_FOUND = "I found nothing about that in your memory."


@functools.lru_cache(maxsize=None)
def get_encoder(model_dir: Optional[str]) -> MemoryEncoder:
    """One MemoryEncoder per student directory, loaded on first use."""
    return MemoryEncoder.load(model_dir)


@functools.lru_cache(maxsize=None)
def get_store(location: str) -> MemoryBackend:
    """One store per location (a SQLite path or a postgresql:// URL, whose pool is kept), opened on first use."""
    return open_store(location, pool_max=settings.pool_max())


def embed(text: str):
    """The text's sentence embedding, float32 of shape (dim,)."""
    return get_encoder(settings.model_dir()).embed(text)


def quote(text: str) -> str:
    text = " ".join(text.split())
    return f"“{text}”" if len(text) <= QUOTE_CHARS else f"“{text[:QUOTE_CHARS]}…”"


def message_of(tracker: Tracker) -> tuple:
    """(sender id, text, route) of the latest user message; text is '' when missing."""
    latest = tracker.latest_message or {}
    text = latest.get("text")
    route = ((latest.get("intent") or {}).get("name")) or "action"
    sender = tracker.sender_id if isinstance(tracker.sender_id, str) else ""
    sender = "" if sender.strip() in ANONYMOUS_SENDERS else sender.strip()
    return sender, text if isinstance(text, str) else "", route


def message_id_of(tracker: Tracker) -> Optional[str]:
    """Rasa's id of the latest user message (the store keeps one event per id), else None."""
    message_id = (tracker.latest_message or {}).get("message_id")
    return message_id if isinstance(message_id, str) and message_id.strip() else None


class ActionMemoryStore(Action):
    """Perform (simulate) the user's request and keep it as an event in their memory."""

    def name(self) -> Text:
        return "action_memory_store"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        sender, text, route = message_of(tracker)
        return store(dispatcher, sender, text, route, message_id_of(tracker))


def store(dispatcher: CollectingDispatcher, sender: str, text: str, route: str,
          message_id: Optional[str] = None) -> List[Dict[Text, Any]]:
    """Store ``text`` as an event of ``sender`` and confirm it (or say why not).

    ``message_id`` (Rasa's id of the message) makes a repeated run for the same message store nothing new.
    """
    if not sender:
        dispatcher.utter_message(text=NO_SENDER)
        return []
    if not text.strip():
        dispatcher.utter_message(text=NO_TEXT)
        return []
    try:
        event = get_store(settings.db_location()).add(sender, route, text, embed(text), message_id=message_id)
    except Exception:  # a reply beats a crashed action; the log has the cause
        logger.exception("Storing an event for sender %r failed.", sender)
        dispatcher.utter_message(text=STORE_FAILED)
        return []
    note = f" (kept the first {MAX_EVENT_CHARS} characters)" if len(text) > MAX_EVENT_CHARS else ""
    dispatcher.utter_message(text=f"Done ✓ {quote(event.text)}. Saved to your memory{note}.")
    return []


class ActionMemoryLookup(Action):
    """Answer a recall question with the user's most similar stored event."""

    def name(self) -> Text:
        return "action_memory_lookup"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        sender, text, _ = message_of(tracker)
        if not sender:
            dispatcher.utter_message(text=NO_SENDER)
            return []
        if not text.strip():
            dispatcher.utter_message(text=NO_QUERY)
            return []
        if is_explicit_store(text):
            # "remember that …" sent to recall by the classifier: the user asked to store it, so store it.
            logger.info("Recall route overridden: %r is an explicit store request.", text[:80])
            return store(dispatcher, sender, text, "action", message_id_of(tracker))
        try:
            encoder = get_encoder(settings.model_dir())
            matches = get_store(settings.db_location()).search(
                sender, encoder.embed(text), min_score=settings.min_similarity(), center=encoder.center
            )
        except Exception:  # a reply beats a crashed action; the log has the cause
            logger.exception("Searching the memory of sender %r failed.", sender)
            dispatcher.utter_message(text=LOOKUP_FAILED)
            return []
        if not matches:
            dispatcher.utter_message(text=NOTHING_FOUND)
            return []
        event, score = matches[0]
        when = datetime.datetime.fromtimestamp(event.created_at).strftime("%Y-%m-%d %H:%M")
        logger.info("Recall for %r matched event %d with cosine %.3f.", sender, event.id, score)
        dispatcher.utter_message(text=f"On {when} you told me: {quote(event.text)}")
        return []


def warm_up() -> None:
    """Load the student now, so the first message does not wait for it; log, don't crash, on failure."""
    try:
        get_encoder(settings.model_dir())
    except Exception:  # the actions reply with STORE_FAILED/LOOKUP_FAILED and log the cause again
        logger.exception("Could not load the student for memory search.")


if settings.preload():
    warm_up()
