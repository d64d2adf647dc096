"""The distillation text corpus: short multilingual texts built from offline package data.

Sources, per language (see ``CORPUS_SOURCES``):

* ``route-train``: the TRAIN split of the shipped route examples. What the benchmarks
  score on never enters the corpus (``evaluation_texts``): every text equal to a
  route dev-split text, a memory-retrieval text or a home-assistant-intents sentence
  of the intent protocols (after ``fold``) is dropped, whatever its source.
* ``chatterbot``: the conversations of ``chatterbot-corpus`` (BSD-3-Clause), read as
  YAML files from the installed package.
* ``django``: Django's user-interface strings as its translators wrote them in each
  language (BSD-3-Clause), read from the ``.po`` catalogs of the installed package
  (see ``gettext_texts``): short natural sentences and labels.
* ``wordfreq``: random n-grams of frequent words (``wordfreq``, Apache-2.0 code,
  CC-BY-SA word lists), ranks drawn log-uniformly so that rare words show up too.
* ``thai-tnc``: the same n-grams for Thai, which wordfreq lacks, from the Thai
  National Corpus frequency list shipped in ``pythainlp`` (Apache-2.0).
"""
import functools
import hashlib
import importlib.util
import json
import logging
import math
import random
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Set, Tuple, Union

from rasa_intent_student.constants import DISTILL_DJANGO_PER_LANGUAGE, DISTILL_TEXTS_PER_LANGUAGE, LANGUAGES, ROUTE_DATA_DIR
from rasa_intent_student.factory.gettext_texts import django_texts
from rasa_intent_student.errors import StudentError

logger = logging.getLogger(__name__)

CORPUS_SOURCES = ("route-train", "chatterbot", "django", "wordfreq", "thai-tnc")
# Scripts written without spaces between words.
NO_SPACE_LANGUAGES = ("zh", "ja", "th")
CHATTERBOT_LANGUAGES = {
    "english": "en", "chinese": "zh", "traditionalchinese": "zh", "japanese": "ja", "korean": "ko",
    "spanish": "es", "french": "fr", "german": "de", "portuguese": "pt", "italian": "it",
    "russian": "ru", "hindi": "hi", "thai": "th", "indonesian": "id", "turkish": "tr", "dutch": "nl",
}
THAI_FREQ_FILE = ("corpus", "tnc_freq.txt")
PathLike = Union[str, Path]


class CorpusText(NamedTuple):
    """One corpus text and where it came from."""

    text: str
    lang: str
    source: str


@dataclass(frozen=True)
class CorpusConfig:
    """What goes into the distillation corpus.

    Attributes:
        languages: ISO 639-1 codes.
        texts_per_language: target size per language; word n-grams fill what the
            route TRAIN split and chatterbot leave.
        max_chatterbot_per_language: cap, so English (4k lines) does not dominate.
        max_django_per_language: cap on Django catalog strings (0: none).
        top_words: size of the frequency list n-grams draw from.
        min_words, max_words: n-gram length range.
        route_data_dir: root holding ``train/{lang}.jsonl`` (and ``dev/`` to exclude).
        parallel_sources: parallel pairs added by ``distill.data.build_training_set`` (see ``factory.parallel``).
        django_pairs_per_language: cap on Django (msgid, msgstr) pairs per language.
        seed: everything random derives from it.
    """

    languages: Tuple[str, ...] = LANGUAGES
    texts_per_language: int = DISTILL_TEXTS_PER_LANGUAGE
    max_chatterbot_per_language: int = 400
    max_django_per_language: int = DISTILL_DJANGO_PER_LANGUAGE
    top_words: int = 20000
    min_words: int = 1
    max_words: int = 6
    route_data_dir: str = str(ROUTE_DATA_DIR)
    parallel_sources: Tuple[str, ...] = ("dialogue", "django")
    django_pairs_per_language: int = 700
    seed: int = 0


# Sentence marks that do not make two texts different ("Pause the music." is "pause the music").
EDGE_MARKS = " .!?,;:…。！？、¿¡"


def fold(text: str) -> str:
    """Case-, space- and edge-punctuation-folded text, for de-duplication and excluding evaluation texts."""
    return " ".join(text.casefold().split()).strip(EDGE_MARKS)


@functools.lru_cache(maxsize=None)
def _evaluation_texts(languages: Tuple[str, ...], route_data_dir: str) -> frozenset:
    from rasa_intent_student.evaluation.crosslingual import memory_texts
    from rasa_intent_student.evaluation.quality import default_corpus

    texts = [t for lang in languages for t in read_route_texts(route_data_dir, "dev", lang)]
    texts += memory_texts(languages)
    texts += [text for rows in default_corpus(languages, None).values() for _, text in rows]
    return frozenset(fold(t) for t in texts)


def evaluation_texts(config: "CorpusConfig") -> frozenset:
    """Folded texts that ``bench`` scores on, which no training text may equal: the route dev split,
    the memory-retrieval facts and questions, and the home-assistant-intents sentences of the intent
    protocols (needs the ``[eval]`` extra, which the factory installs)."""
    return _evaluation_texts(tuple(config.languages), str(config.route_data_dir))


def _package_dir(package: str) -> Optional[Path]:
    spec = importlib.util.find_spec(package)
    roots = list(spec.submodule_search_locations or []) if spec else []
    return Path(roots[0]) if roots else None


def read_route_texts(root: PathLike, split: str, lang: str) -> List[str]:
    """Texts of ``{root}/{split}/{lang}.jsonl`` (empty if the file is missing)."""
    from rasa_intent_student.routes import read_jsonl

    path = Path(root) / split / f"{lang}.jsonl"
    return [row.text for row in read_jsonl(path, lang=lang)] if path.is_file() else []


@functools.lru_cache(maxsize=4)
def chatterbot_texts(languages: Tuple[str, ...] = LANGUAGES) -> Dict[str, Tuple[str, ...]]:
    """Every statement of chatterbot-corpus in ``languages``, by language code (empty if not installed)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10x faster than the pure-Python loader
    root = _package_dir("chatterbot_corpus")
    out: Dict[str, List[str]] = {}
    if root is None:
        logger.warning("chatterbot-corpus is not installed; the corpus has no chatterbot texts.")
        return {}
    for folder, lang in CHATTERBOT_LANGUAGES.items():
        if lang not in languages:
            continue
        for path in sorted((root / "data" / folder).glob("*.yml")):
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}
            for conversation in data.get("conversations") or []:
                for statement in conversation or []:
                    if isinstance(statement, str) and statement.strip():
                        out.setdefault(lang, []).append(statement.strip())
    return {lang: tuple(texts) for lang, texts in out.items()}


@functools.lru_cache(maxsize=1)
def django_root() -> Optional[Path]:
    """The installed ``django`` package (its .po catalogs), or None with a warning."""
    root = _package_dir("django")
    if root is None:
        logger.warning('Django is not installed; the corpus has no Django catalog texts. Run: pip install "Django==5.2.19".')
    return root


def frequent_words(lang: str, n: int) -> Tuple[List[str], str]:
    """The ``n`` most frequent words of ``lang`` and the source they came from."""
    if lang == "th":
        root = _package_dir("pythainlp")
        path = root.joinpath(*THAI_FREQ_FILE) if root else None
        if path is None or not path.is_file():
            logger.warning(
                "No Thai word n-grams: pythainlp's corpus/tnc_freq.txt is not installed. "
                'Run: pip install --no-deps "pythainlp" to add them.'
            )
            return [], "thai-tnc"
        rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if "\t" in line]
        rows.sort(key=lambda r: -int(r[1]))
        return [r[0] for r in rows[:n] if r[0].strip()], "thai-tnc"
    from wordfreq import top_n_list

    return top_n_list(lang, n), "wordfreq"


def word_ngrams(words: Sequence[str], lang: str, count: int, config: CorpusConfig, rng: random.Random) -> List[str]:
    """``count`` random phrases of ``min_words..max_words`` words, ranks drawn log-uniformly."""
    joiner = "" if lang in NO_SPACE_LANGUAGES else " "
    log_n = math.log(len(words))
    phrases = []
    for _ in range(count):
        length = rng.randint(config.min_words, config.max_words)
        picks = [words[min(int(math.exp(rng.random() * log_n)) - 1, len(words) - 1)] for _ in range(length)]
        phrases.append(joiner.join(picks))
    return phrases


def build_corpus(config: CorpusConfig = CorpusConfig()) -> List[CorpusText]:
    """The distillation corpus: per language, route TRAIN texts, chatterbot, Django strings, then word n-grams.

    Returns:
        de-duplicated texts, none equal to an evaluation text (``evaluation_texts``).
    """
    unknown = [lang for lang in config.languages if lang not in LANGUAGES]
    if unknown:
        raise StudentError(f"Unknown corpus languages {unknown}. Valid codes: {list(LANGUAGES)}.")
    rng = random.Random(config.seed)
    chatter = chatterbot_texts(tuple(config.languages))
    corpus: List[CorpusText] = []
    banned = evaluation_texts(config)  # never in the corpus, whichever source produces them
    for lang in config.languages:
        seen: Set[str] = set(banned)

        def add(texts: Iterable[str], source: str, limit: int) -> int:
            added = 0
            for text in texts:
                key = fold(text)
                if added >= limit or not key or key in seen:
                    continue
                seen.add(key)
                corpus.append(CorpusText(text, lang, source))
                added += 1
            return added

        n = add(read_route_texts(config.route_data_dir, "train", lang), "route-train", config.texts_per_language)
        statements = list(chatter.get(lang, []))
        rng.shuffle(statements)
        n += add(statements, "chatterbot", min(config.max_chatterbot_per_language, config.texts_per_language - n))
        catalog = django_texts(lang, django_root()) if config.max_django_per_language > 0 else []
        rng.shuffle(catalog)
        n += add(catalog, "django", min(config.max_django_per_language, config.texts_per_language - n))
        words, source = frequent_words(lang, config.top_words)
        for _ in range(5 if words else 0):  # duplicates of short n-grams are dropped; a few rounds fill the quota
            if n >= config.texts_per_language:
                break
            n += add(word_ngrams(words, lang, config.texts_per_language - n, config, rng), source, config.texts_per_language - n)
    return corpus


def corpus_hash(texts: Iterable[str]) -> str:
    """sha256 of the texts in order, one a line."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\n")
    return digest.hexdigest()


def corpus_manifest(corpus: Sequence[CorpusText], config: CorpusConfig) -> Dict[str, object]:
    """What went in: counts per language and source, the config and the corpus hash."""
    counts: Dict[str, Dict[str, int]] = {}
    for (lang, source), n in sorted(Counter((row.lang, row.source) for row in corpus).items()):
        counts.setdefault(lang, {})[source] = n
    return {
        "texts": len(corpus),
        "sha256": corpus_hash(row.text for row in corpus),
        "counts": counts,
        "by_source": dict(sorted(Counter(row.source for row in corpus).items())),
        "config": asdict(config),
        "excluded": "every text bench scores on (any source, folded): route dev split, memory-retrieval set, "
                    "home-assistant-intents sentences of the intent protocols",
    }


def save_corpus(corpus: Sequence[CorpusText], path: PathLike) -> None:
    """Write the corpus as JSON Lines: {"text", "lang", "source"}."""
    with Path(path).open("w", encoding="utf-8") as f:
        for row in corpus:
            f.write(json.dumps(row._asdict(), ensure_ascii=False) + "\n")


def load_corpus(path: PathLike) -> List[CorpusText]:
    """Read a corpus written by ``save_corpus``."""
    with Path(path).open(encoding="utf-8") as f:
        return [CorpusText(**json.loads(line)) for line in f if line.strip()]
