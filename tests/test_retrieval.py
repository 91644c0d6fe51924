"""Hybrid retrieval on real Chroma: ranking, fusion scores, and a store changed by another process;
each test runs on the embedded store and on a Chroma server with PostgreSQL records."""

from __future__ import annotations

import pytest
from conftest import STORE_MODES, make_settings, run_ingest, write_markdown

from assistant.config import Settings
from assistant.pipeline import build_assistant

pytestmark = pytest.mark.parametrize("store_mode", STORE_MODES, indirect=True)


@pytest.fixture
def assistant(store_mode, request):
    """The shipped corpus, ingested once per session into the store mode's store."""
    return request.getfixturevalue(
        "real_assistant" if store_mode == "embedded" else "real_server_assistant"
    )


def test_hybrid_ranks_the_answering_passage_first(assistant):
    passages = assistant.retriever.retrieve("Welche Soft Skills braucht ein AI Product Owner?")
    assert len(passages) == 5
    assert "product-owner" in passages[0].source
    assert all(a.score >= b.score for a, b in zip(passages, passages[1:], strict=False))
    for p in passages:
        assert 0.0 <= p.keyword <= 1.0 and -1.0 <= p.dense <= 1.0
        assert not p.text.startswith(p.title)  # the context line is not part of the quote


def test_english_question_finds_german_passage(assistant):
    passages = assistant.retriever.retrieve("When is a data protection impact assessment required?")
    assert any(
        p.source == "richtlinien/datenschutz-ki-tools.pdf" and "DSFA" in p.text
        for p in passages[:3]
    )


def test_subsections_in_reading_order(assistant):
    top = assistant.retriever.retrieve("Was muss ein CAIO mitbringen?")[0]
    children = assistant.retriever.subsections(top)
    assert children and all(c.section.startswith(top.section + " > ") for c in children)
    assert [c.metadata["chunk"] for c in children] == sorted(c.metadata["chunk"] for c in children)


def test_empty_store_retrieves_nothing(tmp_path, shared_embeddings, store_overrides):
    from assistant.index import KnowledgeBase

    settings = make_settings(tmp_path, tmp_path, **store_overrides)
    kb = KnowledgeBase(settings, shared_embeddings)
    assert build_assistant(settings, kb).retriever.retrieve("Was ist ein CAIO?") == []


def test_chunks_written_before_the_version_moves_are_not_ranked_yet(
    tmp_path, shared_embeddings, store_overrides
):
    """Another process is mid-ingest: Chroma already returns its chunks, but the version marker
    (and so this BM25 snapshot) does not know them yet. Retrieval ranks what it knows and does not
    fail (a replica starting during another's ingest once crashed on this)."""
    from langchain_core.documents import Document

    from assistant.index import KnowledgeBase

    corpus = tmp_path / "corpus"
    write_markdown(corpus / "reisekosten.md")
    settings = make_settings(tmp_path, corpus, **store_overrides)
    kb = KnowledgeBase(settings, shared_embeddings)
    assert kb.ingest(corpus).ok
    retriever = build_assistant(settings, kb).retriever
    known = len(retriever.retrieve("Reisekosten Erstattung", k=50))
    kb.store.add_documents(
        [
            Document(
                page_content="Drohnen\nDrohnenflüge über dem Lager genehmigt die Werkfeuerwehr.",
                metadata={"source": "drohnen.md", "title": "Drohnen", "aud_all": True},
            )
            for _ in range(known + 1)
        ]
    )
    # Only what the snapshot knows is ranked (here the known chunks its units still find).
    assert all(p.source != "drohnen.md" for p in retriever.retrieve("Wer genehmigt Drohnenflüge?"))
    kb._bump_version()  # the writer finishes: the next question sees its chunks
    assert retriever.retrieve("Wer genehmigt Drohnenflüge?", k=3)[0].source == "drohnen.md"


def test_sees_an_ingest_run_by_another_process(
    small_corpus, tmp_path, shared_embeddings, store_overrides
):
    from assistant.index import KnowledgeBase

    settings: Settings = make_settings(tmp_path, small_corpus, **store_overrides)
    kb = KnowledgeBase(settings, shared_embeddings)
    kb.ingest(small_corpus)
    assistant = build_assistant(settings, kb)
    question = "Welche Bahnklasse wird bei Reisen zu Konferenzen über Quantencomputing erstattet?"
    assert assistant.retriever.retrieve(question)[0].source == "reisekosten.md"

    extra = small_corpus / "quanten.md"
    write_markdown(extra)
    extra.write_text(
        extra.read_text(encoding="utf-8")
        .replace("KI-Konferenzen", "Quantencomputing-Konferenzen")
        .replace("2. Klasse", "1. Klasse"),
        encoding="utf-8",
    )
    assert run_ingest(small_corpus, settings.data_dir, store_overrides)["added"] == ["quanten.md"]
    # The running retriever notices the new corpus version, reopens the store (embedded) or
    # re-reads the collection (server), and rebuilds its BM25 index and hubness.
    passages = assistant.retriever.retrieve(question)
    assert any(p.source == "quanten.md" for p in passages[:2])
    assert kb.count() == len(kb.collection.get(include=[])["ids"])
    assert assistant.retriever._snapshot_version == kb.version()
    assert "quanten.md" in {m["source"] for m in assistant.retriever._snapshot().metadatas}
