"""Stems, language detection and the glossary's query expansion."""

from __future__ import annotations

import pytest

from assistant.search.lexical import DEFAULT_GLOSSARY, Glossary, detect_language, stems


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


def test_glossary_rejects_malformed_file(tmp_path):
    bad = tmp_path / "g.yaml"
    bad.write_text("- CAIO\n", encoding="utf-8")
    with pytest.raises(ValueError, match="list of equivalent terms"):
        Glossary.load(bad)


def test_a_new_version_keeps_the_stems_of_unchanged_chunks_only():
    """The BM25 index of a version built from the previous one equals one built from scratch."""
    import numpy as np

    from assistant.search.retrieval import _Snapshot

    def snapshot(contents, sections, previous=None):
        metas = [{"source": "a.md", "section": s, "aud_all": True} for s in sections]
        vectors = np.eye(len(contents), 4, dtype=np.float32)
        ids = [f"c{i}" for i in range(len(contents))]
        return _Snapshot(ids, list(contents), metas, vectors, "de", previous=previous)

    first = snapshot(["Urlaub beantragen im Portal", "Reisekosten"], ["Urlaub", "Reisen"])
    # c0 keeps text and section, c1 changes its text, c2 is new.
    contents = ["Urlaub beantragen im Portal", "Reisekosten erstatten", "Elternzeit"]
    sections = ["Urlaub", "Reisen", "Eltern"]
    reused = snapshot(contents, sections, previous=first)
    fresh = snapshot(contents, sections)
    assert reused.stems == fresh.stems
    assert reused.postings.keys() == fresh.postings.keys()
    query = reused.bm25.get_tokens_ids(["reisekost", "urlaub"])
    assert np.allclose(reused.bm25.get_scores(query), fresh.bm25.get_scores(query))
