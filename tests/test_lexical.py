"""Stems, language detection and the glossary's query expansion."""

from __future__ import annotations

import pytest

from assistant.search.lexical import (
    DEFAULT_GLOSSARY,
    DEFAULT_KINDS,
    DocumentKinds,
    Glossary,
    detect_language,
    stems,
)


def test_stems_drop_stopwords_and_unify_inflections():
    shared = set(stems("Die Richtlinien und Kompetenzen")) & set(stems("Richtlinie, Kompetenz"))
    assert {"richtlini", "kompetenz"} <= shared
    assert "der" not in stems("der die das")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Was muss ein CAIO mitbringen?", "de"),
        ("What must a CAIO bring?", "en"),
        ("Welche Schulungen sind Pflicht?", "de"),
        ("CAIO", "de"),  # no evidence: the company's language
    ],
)
def test_detect_language(text, language):
    assert detect_language(text) == language


def test_glossary_expands_abbreviations_translations_and_colloquial_words():
    glossary = Glossary.load(DEFAULT_GLOSSARY)
    assert "DSFA" in glossary.equivalents("When do we need a DPIA?")
    assert "Chief AI Officer" in glossary.equivalents("Wer ist unser CAIO?")
    assert "Vorgesetzte" in glossary.equivalents("Darf mein Chef das lesen?")
    # multi-word terms match as a sequence
    assert "Auftragsverarbeitungsvertrag" in glossary.equivalents(
        "Do we have a data processing agreement?"
    )
    assert glossary.equivalents("Wie ist das Wetter?") == []


def test_glossary_synonyms_are_for_a_whole_term_only():
    glossary = Glossary.load(DEFAULT_GLOSSARY)
    assert "KI-Board" in glossary.synonyms("AI board")
    assert "AI Product Owner" in glossary.synonyms("AI PO")
    assert glossary.synonyms("AI Ethics Officer") == []  # contains "AI", is not it
    assert glossary.synonyms("Wetter") == []


def test_glossary_rejects_malformed_file(tmp_path):
    bad = tmp_path / "g.yaml"
    bad.write_text("- CAIO\n", encoding="utf-8")
    with pytest.raises(ValueError, match="list of equivalent terms"):
        Glossary.load(bad)


def test_document_kinds_are_named_by_stem_in_both_languages():
    kinds = DocumentKinds.load(DEFAULT_KINDS)
    assert kinds.named("Was steht laut Fachartikel dazu?") == {"article"}
    assert kinds.named("according to the articles, where do they come from") == {"article"}
    assert kinds.named("Steht das im Rollenprofil oder in der FAQ?") == {"role_profile", "faq"}
    assert kinds.named("Wer genehmigt neue KI-Anwendungen?") == frozenset()


def test_document_kinds_file_must_map_kinds_to_words(tmp_path):
    bad = tmp_path / "kinds.yaml"
    bad.write_text("- [Artikel, article]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="doc_type"):
        DocumentKinds.load(bad)
