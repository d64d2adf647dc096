"""Django's translation catalogs as corpus text: .po parsing, cleaning, and the real installed catalogs."""
import textwrap

import pytest

from rasa_intent_student.factory.corpus import CorpusConfig, _package_dir, build_corpus
from rasa_intent_student.factory.gettext_texts import catalog_texts, clean, django_texts, read_po

pytestmark = pytest.mark.factory

PO = textwrap.dedent(
    r'''
    # a translator comment
    msgid ""
    msgstr ""
    "Language: es\n"

    #, python-format
    msgid "Delete %(name)s"
    msgstr "Eliminar %(name)s"

    #, fuzzy
    msgid "Old guess"
    msgstr "Suposición vieja"

    msgid "Long "
    "text"
    msgstr "Texto "
    "largo con \"comillas\""

    msgid "%(count)d day"
    msgid_plural "%(count)d days"
    msgstr[0] "%(count)d día"
    msgstr[1] "%(count)d días"

    msgid "Untranslated"
    msgstr ""
    '''
)


@pytest.fixture()
def catalog_root(tmp_path):
    for locale, text in {"es": PO, "en": PO.replace('msgstr "Eliminar %(name)s"', 'msgstr ""')}.items():
        folder = tmp_path / "contrib" / "locale" / locale / "LC_MESSAGES"
        folder.mkdir(parents=True)
        (folder / "django.po").write_text(text, encoding="utf-8")
    return tmp_path


def test_read_po_joins_lines_skips_header_and_fuzzy(catalog_root):
    entries = dict(read_po(catalog_root / "contrib" / "locale" / "es" / "LC_MESSAGES" / "django.po"))
    assert "" not in entries and "Old guess" not in entries
    assert entries["Long text"] == ['Texto largo con "comillas"']
    assert entries["%(count)d day"] == ["%(count)d día", "%(count)d días"]
    assert entries["Untranslated"] == [""]


def test_clean_fills_numbers_and_drops_other_placeholders_and_html():
    assert clean("Eliminar %(name)s") == "Eliminar"
    assert clean("%(count)d días") == "3 días"
    assert clean("Hello <b>{user}</b>, you have %s new&nbsp;messages: ") == "Hello , you have new messages"
    assert clean("100%% done") == "100% done"


def test_catalog_texts_translations_and_english_msgids(catalog_root):
    assert catalog_texts(catalog_root, ("es",)) == ["Eliminar", 'Texto largo con "comillas"', "3 día", "3 días"]
    assert "Long text" in catalog_texts(catalog_root, ("en",), english=True)
    assert django_texts("es", None) == []


def test_installed_django_gives_text_in_every_language_and_corpus_counts_it():
    root = _package_dir("django")
    if root is None:
        pytest.fail("Django is part of the factory extra: pip install -e '.[factory]'")
    counts = {lang: len(set(django_texts(lang, root))) for lang in ("en", "es", "pt", "ar", "th", "zh", "ja", "hi")}
    assert min(counts.values()) >= 400, counts
    corpus = build_corpus(CorpusConfig(languages=("es",), texts_per_language=1000, max_chatterbot_per_language=100, max_django_per_language=200, top_words=2000))
    by_source = {source: sum(row.source == source for row in corpus) for source in ("route-train", "chatterbot", "django", "wordfreq")}
    assert by_source["django"] == 200 and by_source["chatterbot"] == 100 and sum(by_source.values()) == 1000, by_source
