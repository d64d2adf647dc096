"""What each simulated user says: languages, the mix of store requests, recalls and small talk, and codes
unique to each user and fact."""
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

import yaml

from ..actions.store_phrases import is_explicit_store

PHRASES_FILE = Path(__file__).with_name("phrases.yml")
# {language: {"store": [...], "recall": [...], "small": [...]}}; store phrases hold a {c} for the code.
LANGUAGES: Dict[str, Dict[str, List[str]]] = yaml.safe_load(PHRASES_FILE.read_text(encoding="utf-8"))
# The kinds of a user's messages, repeated: 3 store requests, 4 recall questions, 3 small talk per 10.
PATTERN = ["small", "store", "store", "recall", "small", "store", "recall", "recall", "small", "recall"]
# Message i with i % len(PATTERN) == BURST_AT is sent together with message i + 1, to two replicas at
# once (a double click, two open tabs): Redis' per-conversation lock must handle them one at a time.
BURST_AT = 8


@dataclass
class Message:
    """One message of one user and what became of it."""

    user: str
    index: int
    kind: str  # store / recall / small
    text: str
    code: str = ""  # store: the fact's code; recall: the code of the fact asked about ("" if none yet)
    replica: int = -1
    status: int = 0
    replies: List[str] = field(default_factory=list)
    latency_ms: float = 0.0
    error: str = ""
    burst: bool = False  # sent together with the next message of the same user


def code_for(user: int, fact: int) -> str:
    """A 6-digit code unique to (user, fact): no code is a substring of another user's."""
    return f"7{user:03d}{fact:02d}"


def plan_user(user: int, messages: int) -> List[Message]:
    """The messages of user ``user``: language by user, kinds by PATTERN, recalls ask for earlier facts."""
    lang = sorted(LANGUAGES)[user % len(LANGUAGES)]
    phrases = LANGUAGES[lang]
    name = f"user-{user:03d}-{lang}"
    plan: List[Message] = []
    facts: List[Tuple[int, str]] = []  # (topic, code) stored so far
    small = itertools.cycle(phrases["small"][user % 3:] + phrases["small"][:user % 3])
    for i in range(messages):
        kind = PATTERN[i % len(PATTERN)]
        if kind == "store":
            topic = len(facts) % len(phrases["store"])
            code = code_for(user, len(facts))
            facts.append((topic, code))
            plan.append(Message(name, i, kind, phrases["store"][topic].format(c=code), code))
        elif kind == "recall":
            if facts:
                topic, code = facts[(i * 7 + user) % len(facts)]
            else:
                topic, code = user % len(phrases["recall"]), ""
            plan.append(Message(name, i, kind, phrases["recall"][topic], code))
        else:
            plan.append(Message(name, i, kind, next(small)))
    for m in plan:
        if m.kind == "store" and not is_explicit_store(m.text):
            raise ValueError(f"scale check phrase {m.text!r} is not an explicit store request (store_phrases.py)")
    return plan


def is_burst(index: int) -> bool:
    return index % len(PATTERN) == BURST_AT
