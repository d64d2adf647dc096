"""Natural sentences in many languages from translation catalogs (``.po``) shipped in packages.

Django ships its user-facing strings ("Enter a valid email address.", "Change
password", "Are you sure?") translated by its community into 100 languages,
BSD-3-Clause, as ``.po`` files inside the wheel. They are short, real sentences
in every language the student serves, which word n-grams are not.
"""
import logging
import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

logger = logging.getLogger(__name__)

# Catalog folders (Django's locale names) read for each language; English is the msgids.
DJANGO_LOCALES: Dict[str, Tuple[str, ...]] = {
    "ko": ("ko",), "ja": ("ja",), "zh": ("zh_Hans", "zh_Hant"), "es": ("es", "es_AR", "es_CO", "es_MX", "es_VE"),
    "fr": ("fr",), "de": ("de",), "pt": ("pt", "pt_BR"), "it": ("it",), "ru": ("ru",), "ar": ("ar", "ar_DZ"),
    "hi": ("hi",), "th": ("th",), "vi": ("vi",), "id": ("id",), "tr": ("tr",), "nl": ("nl",), "pl": ("pl",),
}
ENGLISH_SOURCE_LOCALE = "en"  # its .po files carry every msgid with empty msgstrs

_PLACEHOLDER_NUMBER = re.compile(r"%(?:\([^)]*\))?[-+ #0]*\d*(?:\.\d+)?[dif]")
_PLACEHOLDER_OTHER = re.compile(r"%(?:\([^)]*\))?[-+ #0]*\d*(?:\.\d+)?[srx]|\{[^{}]*\}")
_TAG = re.compile(r"<[^>]+>|&[a-z]+;|&#\d+;")
_ESCAPES = {"n": " ", "t": " ", '"': '"', "\\": "\\"}


def _unquote(line: str) -> str:
    body = line[line.index('"') + 1 : line.rindex('"')]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def read_po(path: Path) -> Iterator[Tuple[str, List[str]]]:
    """(msgid, [msgstr, msgstr[1], ...]) of each entry that is not fuzzy, the header excluded."""
    entry: Dict[str, str] = {}
    key: Optional[str] = None
    fuzzy = False

    def finish() -> Iterator[Tuple[str, List[str]]]:
        msgid = entry.get("msgid", "")
        if msgid and not fuzzy:
            yield msgid, [v for k, v in sorted(entry.items()) if k.startswith("msgstr")]

    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line:
            yield from finish()
            entry, key, fuzzy = {}, None, False
        elif line.startswith("#,"):
            fuzzy = "fuzzy" in line
        elif line.startswith("#"):
            continue
        elif line.startswith('"') and key is not None:
            entry[key] += _unquote(line)
        else:
            key = line.split(" ", 1)[0]
            if key == "msgid" and "msgid" in entry:  # a new entry with no blank line before it
                yield from finish()
                entry, fuzzy = {}, False
            entry[key] = _unquote(line)
    yield from finish()


def clean(text: str) -> str:
    """A catalog string as plain text: numbers for numeric placeholders, other placeholders and HTML dropped."""
    text = _PLACEHOLDER_NUMBER.sub("3", text.replace("%%", "\0"))  # "%%" is a literal percent sign
    text = _PLACEHOLDER_OTHER.sub(" ", _TAG.sub(" ", text))
    return " ".join(text.replace("\0", "%").split()).strip(" :,;")


def catalog_texts(root: Path, locales: Tuple[str, ...], english: bool = False) -> List[str]:
    """Cleaned translations (or, with ``english``, msgids) of every ``locale/{name}/LC_MESSAGES/*.po`` under ``root``."""
    out: List[str] = []
    for locale in locales:
        for path in sorted(root.glob(f"**/locale/{locale}/LC_MESSAGES/*.po")):
            for msgid, msgstrs in read_po(path):
                texts = [msgid] if english else msgstrs
                out.extend(t for t in map(clean, texts) if len(t) >= 2)
    return out


def django_texts(lang: str, root: Optional[Path]) -> List[str]:
    """Django's translated strings for ``lang`` (``root``: the installed ``django`` package; None: none)."""
    if root is None:
        return []
    if lang == "en":
        return catalog_texts(root, (ENGLISH_SOURCE_LOCALE,), english=True)
    return catalog_texts(root, DJANGO_LOCALES.get(lang, ()))
