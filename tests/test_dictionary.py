"""English words of a question in German: the Ding-format dictionary, its cache, and the keyword
search of an English question over German documents."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.search.dictionary import Dictionary, parse
from assistant.search.lexical import detect_language

DING = """# Version :: test
# License :: GPL
Betriebsrat {m} | Betriebsräte {pl} :: works council | works councils
Logistik {f} :: logistics
Zentrum {n}; Mittelpunkt {m} | Zentren {pl} :: centre [Br.]; center [Am.] | centres; centers
etw. genehmigen; etw. freigeben {vt} | genehmigend :: to approve sth. | approving
Schicht {f}; Arbeitsschicht {f} :: shift
Fall {m} :: case
kaputte Zeile ohne Trenner
Rat {m} | Räte {pl} :: council
"""


@pytest.fixture
def ding(tmp_path: Path) -> Path:
    path = tmp_path / "de-en"
    path.write_text(DING, encoding="utf-8")
    return path


def test_parse_pairs_senses_and_drops_annotations():
    pairs = {(en, de) for en, de, _ in parse(iter(DING.splitlines()))}
    assert ("works council", "Betriebsrat") in pairs
    assert ("works councils", "Betriebsräte") in pairs
    assert ("centre", "Zentrum") in pairs and ("center", "Mittelpunkt") in pairs
    assert ("approve", "genehmigen") in pairs and ("approve", "freigeben") in pairs
    assert not any("{" in de or "[" in en or "etw" in de for en, de in pairs)


def test_translations_keep_the_words_the_documents_use(ding, tmp_path):
    dictionary = Dictionary(ding, tmp_path / "cache")
    known = {"Betriebsrat", "Logistik", "Zentren", "genehmigen", "Schicht"}.__contains__
    question = "Who in the works council must approve the logistics centres for my shift?"
    german = dictionary.translations(question, known)
    # "works council" as a phrase (not "council" alone: Rat is not in the documents anyway),
    # plural to singular when only the singular is listed, nouns only (no "genehmigen").
    assert german == ["Betriebsrat", "Logistik", "Zentren", "Schicht"]
    assert dictionary.translations("Who?", known) == []
    assert dictionary.translations(question, lambda word: False) == []


def test_the_table_is_built_once_per_dictionary_file(ding, tmp_path):
    cache = tmp_path / "cache"
    Dictionary(ding, cache).lookup("logistics")
    tables = list(cache.glob("*.sqlite"))
    assert len(tables) == 1
    built = tables[0].stat().st_mtime_ns
    assert Dictionary(ding, cache).lookup("logistics") == ("Logistik",)
    assert tables[0].stat().st_mtime_ns == built
    ding.write_text(DING + "Lager {n} :: warehouse\n", encoding="utf-8")  # a new release
    assert Dictionary(ding, cache).lookup("warehouse") == ("Lager",)


def test_no_dictionary_file_is_one_warning_and_no_translations(tmp_path, caplog):
    dictionary = Dictionary(tmp_path / "missing", tmp_path / "cache")
    with caplog.at_level(logging.WARNING, logger="assistant.search.dictionary"):
        assert dictionary.translations("works council", lambda word: True) == []
        assert dictionary.translations("logistics", lambda word: True) == []
    assert len(caplog.records) == 1 and "trans-de-en" in caplog.records[0].getMessage()
    assert Dictionary(None, tmp_path).lookup("logistics") == ()


def test_an_empty_setting_means_no_dictionary(monkeypatch):
    monkeypatch.setenv("ASSISTANT_DICTIONARY_PATH", "")
    assert Settings(_env_file=None).dictionary_path is None


def test_an_english_question_searches_the_german_words_of_the_installed_dictionary(
    real_assistant,
):
    """Debian's trans-de-en (installed by `make system-deps`): "deputy" finds the passages that
    say who "vertritt" someone ("Vertreter"), a word no glossary entry bridges."""
    retriever = real_assistant.retriever
    assert retriever.dictionary.source and retriever.dictionary.source.is_file(), (
        "the English-German dictionary is missing: run `make system-deps` (trans-de-en)"
    )
    question = "Who is the deputy of the data protection officer?"
    assert "Vertreter" not in retriever.glossary.equivalents(question)
    german = [p for p in retriever.retrieve(question) if "Vertret" in p.text]
    assert german and german[0].keyword > 0
    without = retriever.dictionary
    try:
        retriever.dictionary = Dictionary(None, without.cache_dir)
        plain = {p.id: p.keyword for p in retriever.retrieve(question)}
    finally:
        retriever.dictionary = without
    assert plain.get(german[0].id, 0.0) < german[0].keyword


def test_the_words_only_one_language_has_tell_a_question_without_function_words(ding, tmp_path):
    """ "logistics shift?" has no function word to tell its language by: the dictionary knows
    "logistics" only as English ("shift" only as English, "Schicht" only as German)."""
    dictionary = Dictionary(ding, tmp_path / "cache")
    assert dictionary.language(["logistics", "shift"]) == "en"
    assert dictionary.language(["schicht", "logistik"]) == "de"
    assert dictionary.language(["nordgpt", "2026"]) is None  # neither side knows them
    assert dictionary.language(["logistics", "schicht"]) is None  # one each
    assert Dictionary(None, tmp_path / "cache").language(["logistics"]) is None

    assert detect_language("logistics shift?") == "de"  # unsure: the company's language
    assert detect_language("logistics shift?", dictionary.language) == "en"
    assert detect_language("Schicht Logistik?", dictionary.language) == "de"
    # Function words decide when they can: the dictionary is not asked.
    assert detect_language("Was ist die logistics shift?", dictionary.language) == "de"
    assert detect_language("What is the Schicht?", dictionary.language) == "en"


def test_a_short_english_question_gets_an_english_answer(real_assistant):
    """ "office hours english?" has no English function word: it was answered with a German
    frame ("Laut …", "Weitere Stellen") and searched without its German bridge."""
    answer = real_assistant.ask("office hours english?")
    assert answer.language == "en"
    assert answer.answered and answer.answer.startswith(("According to", "The German"))
    assert "Laut" not in answer.answer and "Weitere Stellen" not in answer.answer
