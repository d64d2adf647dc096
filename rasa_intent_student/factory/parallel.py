"""Parallel text for multilingual distillation: an English source and its translation.

The student learns to put a translation where the teacher puts its English source
(Reimers & Gurevych 2020, "Making Monolingual Sentence Embeddings Multilingual
using Knowledge Distillation"). Sources, each with its licence:

* ``dialogue``: short user messages to an assistant, written for this project in
  English and translated into the 17 other languages (``factory/data/parallel/
  dialogue-*.jsonl``, Apache-2.0 like the project), one file a kind: ``requests``
  and ``tasks`` (do something now), ``history`` and ``recall`` (questions about
  the user's own data), ``notes`` (facts to keep), ``chat`` and ``smalltalk``,
  ``everyday`` and ``everyday2``, ``knowledge`` (general questions) and
  ``support`` (customer service).
* ``dialogue-next``: 960 more messages in the same form in ``next/``
  (``NEXT_DIALOGUE_DIR``), added in the default's second stage (``make distill-next``): ``smarthome`` and
  ``media`` (spoken device, music, timer and list commands), ``aboutme`` and ``askback`` (personal facts told,
  and asked for again in other words), ``info`` (questions of fact),
  ``errands`` (travel, food, shopping), ``work`` and ``feelings`` (chat that
  asks for nothing). Their pairs count as ``dialogue`` for the translation
  target (``xling_sources``).
* ``dialogue-more``: 960 more in ``more/`` (``MORE_DIALOGUE_DIR``): ``calendar`` (appointments, reminders,
  alarms), ``messaging`` (texts, calls, mail), ``household`` (appliances, locks, heating), ``memories`` (asking
  back what the user told or did), ``lifelog`` (facts and events to keep), ``howto`` (general questions and
  advice), ``social`` (greetings, thanks, yes/no, reactions, questions about the assistant, mostly 1–4 words)
  and ``money`` (payments, orders, health and fitness logs). Written for this project like the others.
* ``dialogue-voice``: 960 more in ``voice/`` (``VOICE_DIALOGUE_DIR``), much of it spoken to a voice assistant:
  ``lists`` (shopping and to-do lists), ``weather`` (weather, time and date), ``tv`` (TV, music and radio
  control), ``travel`` (directions, transport, bookings), ``kitchen`` (timers, recipes, food orders),
  ``family`` (kids, pets, home life), ``study`` (school and work) and ``opinions`` (conversation that asks
  for nothing).
* ``dialogue-pairs``: 240 facts a user asks the assistant to keep, each with a later question that asks for it
  in other words, in ``pairs/`` (``PAIRS_DIALOGUE_DIR``; rows ``{"id", "store": {lang: text}, "ask": {lang: text}}``,
  Indonesian keyed ``id`` as in the memory benchmark's file), one file a topic: ``home``, ``people``, ``health``,
  ``schedule``, ``travel``, ``money``, ``work`` and ``everyday``. As a parallel source each side is a dialogue
  message and its 17 translations; the memory term (``memory_pairs``) pairs a question with its fact across
  languages. Written for this project like the others; none of its facts is one of the benchmark's.
* ``django``: Django's interface strings (``msgid``) and their translations
  (``msgstr``) from the ``.po`` catalogs in the installed wheel (BSD-3-Clause).

Pairs whose source or translation equals a text that ``bench`` scores on are
dropped (``corpus.evaluation_texts``), as everywhere in the distillation corpus.
"""
import json
import random
from pathlib import Path
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Set, Tuple

from rasa_intent_student.constants import LANGUAGES
from rasa_intent_student.errors import StudentError

PARALLEL_DATA_DIR = Path(__file__).resolve().parent / "data" / "parallel"
NEXT_DIALOGUE_DIR = PARALLEL_DATA_DIR / "next"  # the "dialogue" source's glob does not reach them
MORE_DIALOGUE_DIR = PARALLEL_DATA_DIR / "more"
VOICE_DIALOGUE_DIR = PARALLEL_DATA_DIR / "voice"
PAIRS_DIALOGUE_DIR = PARALLEL_DATA_DIR / "pairs"
DIALOGUE_DIRS = {"dialogue": PARALLEL_DATA_DIR, "dialogue-next": NEXT_DIALOGUE_DIR, "dialogue-more": MORE_DIALOGUE_DIR,
                 "dialogue-voice": VOICE_DIALOGUE_DIR, "dialogue-pairs": PAIRS_DIALOGUE_DIR}
PARALLEL_SOURCES = (*DIALOGUE_DIRS, "django")
# The dialogue files key Indonesian as "in": "id" is the row id.
DIALOGUE_KEYS = {lang: ("in" if lang == "id" else lang) for lang in LANGUAGES}


class MemoryPair(NamedTuple):
    """A fact a user asked to keep and a later question that asks for it, each ``{lang: text}``."""

    store: Dict[str, str]
    ask: Dict[str, str]


class ParallelPair(NamedTuple):
    """An English source sentence, its translation into ``lang``, and where the pair came from."""

    source: str
    text: str
    lang: str
    origin: str


def dialogue_dirs(sources: Iterable[str]) -> List[Path]:
    """The folders of the dialogue sources (``DIALOGUE_DIRS``) among ``sources``."""
    return [DIALOGUE_DIRS[s] for s in sources if s in DIALOGUE_DIRS]


def dialogue_pairs(languages: Sequence[str], directories: Sequence[Path] = (PARALLEL_DATA_DIR,)) -> List[ParallelPair]:
    """Every (English, translation) pair of the dialogue files in ``directories``, for the non-English ``languages``.

    Files are read in name order across the folders, so a corpus is the same whichever folder a file sits in.
    """
    pairs: List[ParallelPair] = []
    files = sorted((path for d in directories for path in Path(d).glob("dialogue-*.jsonl")), key=lambda path: path.name)
    for path in files:
        for number, row in _json_rows(path):
            # A memory pair's fact and question are each a message with its translations.
            flat = {lang: row.get(key, "") for lang, key in DIALOGUE_KEYS.items()}
            messages = [row["store"], row["ask"]] if "store" in row else [flat]
            for message in messages:
                _check_languages(message, path, number)
                for lang in languages:
                    if lang != "en":
                        pairs.append(ParallelPair(message["en"].strip(), message[lang].strip(), lang, "dialogue"))
    return pairs


def memory_pairs(directory: Path = PAIRS_DIALOGUE_DIR) -> List[MemoryPair]:
    """The (fact, question) pairs of the ``dialogue-pairs-*.jsonl`` files in ``directory``, texts stripped."""
    pairs: List[MemoryPair] = []
    for path in sorted(Path(directory).glob("dialogue-pairs-*.jsonl")):
        for number, row in _json_rows(path):
            for side in ("store", "ask"):
                if not isinstance(row.get(side), dict):
                    raise StudentError(f"{path}:{number} has no {side!r} object; a memory pair is "
                                       '{"id", "store": {lang: text}, "ask": {lang: text}}.')
                _check_languages(row[side], path, number)
            pairs.append(MemoryPair(*({lang: row[side][lang].strip() for lang in LANGUAGES} for side in ("store", "ask"))))
    if not pairs:
        raise StudentError(f"No memory pairs (dialogue-pairs-*.jsonl) in {directory}.")
    return pairs


def _json_rows(path: Path) -> Iterable[Tuple[int, Dict[str, object]]]:
    """(line number, object) of each non-blank line of a JSON Lines file."""
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            yield number, json.loads(line)


def _check_languages(message: Dict[str, object], path: Path, number: int) -> None:
    missing = [lang for lang in LANGUAGES if not str(message.get(lang, "")).strip()]
    if missing:
        raise StudentError(f"{path}:{number} has no text for {missing}; every row needs all 18 languages.")


def django_pairs(languages: Sequence[str], root: Optional[Path], per_language: int, seed: int = 0) -> List[ParallelPair]:
    """Up to ``per_language`` (msgid, msgstr) pairs of Django's catalogs per non-English language, cleaned."""
    from rasa_intent_student.factory.gettext_texts import DJANGO_LOCALES, clean, read_po

    if root is None or per_language <= 0:
        return []
    rng = random.Random(seed)
    pairs: List[ParallelPair] = []
    for lang in languages:
        found: Dict[str, str] = {}
        for locale in DJANGO_LOCALES.get(lang, ()):
            for path in sorted(Path(root).glob(f"**/locale/{locale}/LC_MESSAGES/*.po")):
                for msgid, msgstrs in read_po(path):
                    source, text = clean(msgid), clean(msgstrs[0]) if msgstrs else ""
                    if len(source) >= 2 and len(text) >= 2 and text != source:
                        found.setdefault(source, text)
        chosen = sorted(found.items())
        rng.shuffle(chosen)
        pairs += [ParallelPair(s, t, lang, "django") for s, t in chosen[:per_language]]
    return pairs


def drop_banned(pairs: Iterable[ParallelPair], banned: Set[str]) -> List[ParallelPair]:
    """Pairs none of whose sides is in ``banned`` (folded texts, e.g. the route dev split)."""
    from rasa_intent_student.factory.corpus import fold

    return [p for p in pairs if fold(p.source) not in banned and fold(p.text) not in banned]
