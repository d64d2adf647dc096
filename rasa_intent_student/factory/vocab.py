"""Choose which tokenizer pieces the student keeps, and measure what pruning costs.

Pieces are ranked per language by how many words of that language's
frequency list (``wordfreq``) and route TRAIN utterances use them; the
languages then take turns adding their next-best piece until the target size
is reached. Special tokens, the single characters of the 18 languages' scripts
and every piece of the route TRAIN utterances are always kept.
"""
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from rasa_intent_student.constants import DIALOGUE_MIN_COUNT, DIALOGUE_VOCAB_SOURCES, LANGUAGES
from rasa_intent_student.errors import StudentError

logger = logging.getLogger(__name__)

# Unicode ranges of the scripts the 18 languages are written in (plus shared punctuation).
SCRIPT_RANGES: Dict[str, Tuple[Tuple[int, int], ...]] = {
    "latin": ((0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x1E00, 0x1EFF)),
    "punctuation": ((0x2000, 0x206F), (0x20A0, 0x20CF), (0x3000, 0x303F)),
    "cyrillic": ((0x400, 0x4FF),),
    "arabic": ((0x600, 0x6FF), (0x750, 0x77F)),
    "devanagari": ((0x900, 0x97F),),
    "thai": ((0xE00, 0xE7F),),
    "hangul": ((0x1100, 0x11FF), (0x3130, 0x318F), (0xAC00, 0xD7AF)),
    "kana": ((0x3040, 0x30FF),),
    "han": ((0x3400, 0x4DBF), (0x4E00, 0x9FFF)),
}
# Languages written without spaces: wordfreq splits them into words, so their
# words are glued back together before tokenizing (pieces then lack the "▁").
NO_SPACE_LANGUAGES = ("ja", "zh", "th")
WORDS_PER_LANGUAGE = 50000
HELD_OUT_EVERY = 10  # every 10th frequency-list word is held out to measure the unk rate
METASPACE = "\u2581"


def in_scripts(char: str, scripts: Iterable[str] = tuple(SCRIPT_RANGES)) -> bool:
    code = ord(char)
    return any(lo <= code <= hi for s in scripts for lo, hi in SCRIPT_RANGES[s])


def wordfreq_words(lang: str, n: int = WORDS_PER_LANGUAGE) -> List[str]:
    """The ``n`` most frequent words of ``lang``, or [] when wordfreq has no list for it."""
    import wordfreq

    try:
        return list(wordfreq.top_n_list(lang, n))
    except LookupError:
        return []


def route_texts(route_dir: Optional[Path], split: str, lang: str) -> List[str]:
    """Texts of ``<route_dir>/<split>/<lang>.jsonl`` ([] when the file is missing)."""
    if route_dir is None:
        return []
    path = Path(route_dir) / split / f"{lang}.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row["text"] for row in rows if isinstance(row, dict) and isinstance(row.get("text"), str)]


def split_words(words: Sequence[str]) -> Tuple[List[str], List[str]]:
    """(words used to choose pieces, held-out words)."""
    choose = [w for i, w in enumerate(words) if i % HELD_OUT_EVERY]
    held = [w for i, w in enumerate(words) if not i % HELD_OUT_EVERY]
    return choose, held


def as_texts(lang: str, words: Sequence[str], group: int = 6) -> List[str]:
    if lang not in NO_SPACE_LANGUAGES:
        return list(words)
    return ["".join(words[i : i + group]) for i in range(0, len(words), group)]


def _count_pieces(tokenizer, texts: Sequence[str]) -> Counter:
    counts: Counter = Counter()
    for enc in tokenizer.encode_batch(list(texts), add_special_tokens=False):
        counts.update(set(enc.ids))  # documents containing the piece
    return counts


def script_pieces(vocab: Sequence[Tuple[str, float]], scripts: Iterable[str]) -> Set[int]:
    """Ids of single-character pieces (with or without "▁") whose character is in ``scripts``."""
    scripts = tuple(scripts)
    out = set()
    for i, (piece, _) in enumerate(vocab):
        body = piece[1:] if piece.startswith(METASPACE) else piece
        if len(body) == 1 and in_scripts(body, scripts) or piece == METASPACE:
            out.add(i)
    return out


def whole_script_pieces(vocab: Sequence[Tuple[str, float]], script: str) -> Set[int]:
    """Ids of every piece written entirely in ``script`` (fallback for languages without a word list)."""
    out = set()
    for i, (piece, _) in enumerate(vocab):
        body = piece.replace(METASPACE, "")
        if body and all(in_scripts(c, (script,)) for c in body):
            out.add(i)
    return out


LANGUAGE_SCRIPT = {"th": "thai"}


def dialogue_pieces(
    tokenizer, languages: Sequence[str], min_count: int = DIALOGUE_MIN_COUNT, sources: Sequence[str] = DIALOGUE_VOCAB_SOURCES
) -> List[int]:
    """The pieces of the parallel dialogue messages of ``sources`` (``factory.parallel``) in ``languages`` and English
    seen at least ``min_count`` times, most used first."""
    from rasa_intent_student.factory.parallel import dialogue_dirs, dialogue_pairs

    pairs = dialogue_pairs(languages, dialogue_dirs(sources))
    texts = sorted({p.text for p in pairs} | {p.source for p in pairs})
    return [i for i, count in _count_pieces(tokenizer, texts).most_common() if count >= min_count]


def choose_pieces(
    tokenizer_path: Path,
    target_size: int,
    languages: Sequence[str] = LANGUAGES,
    route_dir: Optional[Path] = None,
    prefix: str = "",
    words_per_language: int = WORDS_PER_LANGUAGE,
    dialogue_sources: Sequence[str] = DIALOGUE_VOCAB_SOURCES,
    dialogue_min_count: int = DIALOGUE_MIN_COUNT,
) -> Tuple[List[int], Dict[str, object]]:
    """Pick about ``target_size`` teacher token ids for the languages.

    ``dialogue_sources``: the dialogue messages whose pieces come before the frequency lists;
    ``dialogue_min_count``: how often such a piece must occur to be kept.

    Returns:
        (sorted kept ids, report: how many pieces each source contributed and
        which languages had no word list). Exactly ``target_size`` ids unless the
        teacher has fewer pieces.
    """
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    data = json.loads(Path(tokenizer_path).read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    specials = {t["id"] for t in data.get("added_tokens") or []}
    if data["model"].get("unk_id") is not None:
        specials.add(data["model"]["unk_id"])
    keep: Set[int] = set(specials) | script_pieces(vocab, SCRIPT_RANGES)
    report: Dict[str, object] = {"special": len(specials), "script_characters": len(keep) - len(specials)}

    ranked: Dict[str, List[int]] = {}
    no_wordlist = []
    route_forced: Set[int] = set(tokenizer.encode(prefix, add_special_tokens=False).ids) if prefix else set()
    for lang in languages:
        words, _ = split_words(wordfreq_words(lang, words_per_language))
        train = route_texts(route_dir, "train", lang)
        route_forced |= {i for t in tokenizer.encode_batch(train, add_special_tokens=False) for i in t.ids}
        if not words:
            no_wordlist.append(lang)
            if lang in LANGUAGE_SCRIPT:
                before = len(keep)
                keep |= whole_script_pieces(vocab, LANGUAGE_SCRIPT[lang])
                report[f"{LANGUAGE_SCRIPT[lang]}_script_pieces"] = len(keep) - before
        counts = _count_pieces(tokenizer, as_texts(lang, words) + train)
        ranked[lang] = [i for i, _ in counts.most_common()]
    before = len(keep)
    keep |= route_forced
    report["route_train"] = len(keep) - before

    report["languages_without_wordlist"] = no_wordlist
    if len(keep) > target_size:
        raise StudentError(
            f"Special, script and route pieces alone are {len(keep)} > target vocab size {target_size}; "
            "raise --vocab-size."
        )
    # Assistant messages in every language (the parallel dialogue data) come next, most used first: the words users
    # type to a bot, which frequency lists of general text rank low (codes, names, app words). A dropped piece is
    # re-segmented into smaller ones; measured: cross-lingual memory retrieval 0.742 (all pieces) -> 0.58 -> 0.687.
    before = len(keep)
    for piece in dialogue_pieces(tokenizer, languages, dialogue_min_count, dialogue_sources):
        if len(keep) >= target_size:
            break
        keep.add(piece)
    report["dialogue"] = len(keep) - before
    report["dialogue_messages"] = {"sources": list(dialogue_sources), "min_count": dialogue_min_count}  # ints are counts
    before = len(keep)
    cursors = {lang: 0 for lang in ranked}
    while len(keep) < target_size and cursors:
        for lang in list(cursors):
            order, pos = ranked[lang], cursors[lang]
            while pos < len(order) and order[pos] in keep:
                pos += 1
            if pos >= len(order):
                del cursors[lang]
                continue
            keep.add(order[pos])
            cursors[lang] = pos + 1
            if len(keep) >= target_size:
                break
    report["frequency_ranked"] = len(keep) - before
    if len(keep) < target_size:  # corpora exhausted: fill with the teacher's most probable pieces
        rest = sorted((i for i in range(len(vocab)) if i not in keep), key=lambda i: -vocab[i][1])
        keep |= set(rest[: target_size - len(keep)])
    report["score_ranked"] = len(keep) - before - report["frequency_ranked"]
    return sorted(keep), report


def _unk_stats(pruned, full, unk_id: int, texts: Sequence[str]) -> Dict[str, float]:
    p = pruned.encode_batch(list(texts), add_special_tokens=False)
    f = full.encode_batch(list(texts), add_special_tokens=False)
    n_p, n_f = sum(len(e.ids) for e in p), sum(len(e.ids) for e in f)
    return {
        "unk_rate": round(sum(e.ids.count(unk_id) for e in p) / max(n_p, 1), 5),
        "teacher_unk_rate": round(sum(e.ids.count(unk_id) for e in f) / max(n_f, 1), 5),
        "token_ratio": round(n_p / max(n_f, 1), 3),
    }


def unk_rates(
    tokenizer_path: Path,
    full_tokenizer_path: Path,
    languages: Sequence[str] = LANGUAGES,
    route_dir: Optional[Path] = None,
    words_per_language: int = WORDS_PER_LANGUAGE,
) -> Dict[str, Dict[str, object]]:
    """Per language: share of ``<unk>`` tokens and tokens per text relative to the full tokenizer.

    The headline figures use the route DEV split when present, else held-out
    frequency-list words; ``held_out_words`` always holds the latter (empty for
    languages without a list). Neither text was used to choose pieces.
    """
    from tokenizers import Tokenizer

    pruned, full = Tokenizer.from_file(str(tokenizer_path)), Tokenizer.from_file(str(full_tokenizer_path))
    unk_id = pruned.token_to_id("<unk>")
    out: Dict[str, Dict[str, object]] = {}
    for lang in languages:
        dev = route_texts(route_dir, "dev", lang)
        held = as_texts(lang, split_words(wordfreq_words(lang, words_per_language))[1])
        held_stats = {"texts": len(held), **_unk_stats(pruned, full, unk_id, held)} if held else {}
        if dev:
            row = {"source": "route-dev", "texts": len(dev), **_unk_stats(pruned, full, unk_id, dev)}
        elif held:
            row = {"source": "held-out-words", **held_stats}
        else:
            row = {"source": "none", "texts": 0, "unk_rate": None, "teacher_unk_rate": None, "token_ratio": None}
        out[lang] = {**row, "held_out_words": held_stats}
    return out
