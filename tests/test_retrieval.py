"""Hybrid retrieval on real Chroma: ranking, fusion scores, and a store changed by another process;
each test runs on the embedded store and on a Chroma server with PostgreSQL records."""

from __future__ import annotations

import pytest
from conftest import STORE_MODES, make_settings, run_ingest, write_markdown

from assistant.answering.pipeline import build_assistant
from assistant.config import Settings
from assistant.ingest.corpus import ingest_corpus

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


def test_several_questions_are_embedded_in_one_call_and_ranked_as_one_by_one(
    assistant, monkeypatch
):
    """The parts of a multi-part question: one embedding call for all of them (an English part
    with its cross-lingual bridge), the same passages as asked one at a time."""
    retriever = assistant.retriever
    questions = ["Wie lange dauert die Pflichtschulung?", "Who approves a new AI tool?"]
    alone = [[p.id for p in retriever.retrieve(q, k=3)] for q in questions]
    embeddings = retriever.kb.embeddings
    batches: list[int] = []
    embed = embeddings.embed_queries
    monkeypatch.setattr(embeddings, "embed_queries", lambda t: batches.append(len(t)) or embed(t))
    together = retriever.retrieve_each(questions, k=3)
    assert [[p.id for p in ps] for ps in together] == alone
    assert len(batches) == 1 and batches[0] >= len(questions)
    assert retriever.retrieve_each([]) == []


def test_subsections_in_reading_order(assistant):
    top = assistant.retriever.retrieve("Was muss ein CAIO mitbringen?")[0]
    children = assistant.retriever.subsections(top)
    assert children and all(c.section.startswith(top.section + " > ") for c in children)
    assert [c.metadata["chunk"] for c in children] == sorted(c.metadata["chunk"] for c in children)


def test_empty_store_retrieves_nothing(tmp_path, shared_embeddings, store_overrides):
    from assistant.store.knowledge_base import KnowledgeBase

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

    from assistant.store.knowledge_base import KnowledgeBase

    corpus = tmp_path / "corpus"
    write_markdown(corpus / "reisekosten.md")
    settings = make_settings(tmp_path, corpus, **store_overrides)
    kb = KnowledgeBase(settings, shared_embeddings)
    assert ingest_corpus(kb, corpus).ok
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
    kb.bump_version()  # the writer finishes: the next question sees its chunks
    assert retriever.retrieve("Wer genehmigt Drohnenflüge?", k=3)[0].source == "drohnen.md"


def test_sees_an_ingest_run_by_another_process(
    small_corpus, tmp_path, shared_embeddings, store_overrides
):
    from assistant.store.knowledge_base import KnowledgeBase

    settings: Settings = make_settings(tmp_path, small_corpus, **store_overrides)
    kb = KnowledgeBase(settings, shared_embeddings)
    ingest_corpus(kb, small_corpus)
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
    index = assistant.retriever.index.current()
    assert index.version == kb.version() == kb.stored_version()
    assert "quanten.md" in index.by_source


def test_restricted_passages_crowding_the_nearest_ones_never_reach_other_readers(
    tmp_path, shared_embeddings, store_overrides
):
    """The nearest-neighbour search asks Chroma without its (slow) audience filter and filters
    itself: when HR-only chunks fill the whole unfiltered window, the filtered search runs and
    the public passage is still found; no HR text reaches a public reader."""
    from assistant.store.knowledge_base import KnowledgeBase

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    sections = "\n\n".join(
        f"## Regel {i}\n\nDienstreisen nach {city} werden in Gehaltsband Q{i} abgerechnet."
        for i, city in enumerate(["Bremen", "Hamburg", "Kiel", "Lübeck", "Rostock", "Emden"] * 3)
    )
    (corpus / "hr.md").write_text(
        f"---\ntitle: Reise intern\naudience: hr\n---\n# Reise intern\n\n{sections}\n",
        encoding="utf-8",
    )
    (corpus / "public.md").write_text(
        "---\ntitle: Reisen\naudience: all\n---\n# Reisen\n\n## Abrechnung\n\n"
        "Dienstreisen rechnen alle Beschäftigten über das Reiseportal ab.\n",
        encoding="utf-8",
    )
    settings = make_settings(tmp_path, corpus, candidates=5, unit_candidates=5, **store_overrides)
    kb = KnowledgeBase(settings, shared_embeddings)
    assert ingest_corpus(kb, corpus).ok
    retriever = build_assistant(settings, kb).retriever
    public = retriever.retrieve("Wie rechne ich Dienstreisen ab?")
    assert public and {p.source for p in public} == {"public.md"}
    hr = retriever.retrieve("Wie rechne ich Dienstreisen ab?", groups=frozenset({"all", "hr"}))
    assert "hr.md" in {p.source for p in hr}
    # The search itself: the unfiltered window holds only HR chunks, the filtered one answers.
    vector = shared_embeddings.embed_query("Dienstreisen nach Bremen Gehaltsband")
    for units in (False, True):
        total = kb.unit_count() if units else kb.count()
        [(_, _, meta)] = kb.nearest(vector, 1, frozenset({"all"}), units=units, total=total)
        assert meta["source"] == "public.md"
    # Told how many units a reader may not read, it asks for just that many more than it needs:
    # with more hidden ones than that (here all but one), it still falls back to the filter.
    metas = kb.unit_store._collection.get(include=["metadatas"])["metadatas"]
    hidden = sum(m["source"] == "hr.md" for m in metas)
    index = retriever.index.current()
    assert index.unreadable_units(frozenset({"all"})) == hidden > 1
    assert index.unreadable_units(frozenset({"all", "hr"})) == 0
    for told in (hidden, 0):
        [(_, _, meta)] = kb.nearest(
            vector, 1, frozenset({"all"}), units=True, total=len(metas), unreadable=told
        )
        assert meta["source"] == "public.md"


def test_a_question_naming_a_kind_of_document_prefers_that_kind(
    tmp_path, shared_embeddings, store_overrides
):
    """Two documents about the same role, an article and a role profile: "laut Artikel" /
    "according to the FAQ" decide which one leads; without such words nothing changes."""
    from assistant.store.knowledge_base import KnowledgeBase

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    head = "---\ntitle: {title}\naudience: all\nlanguage: de\ndoc_type: {kind}\n---\n# {title}\n\n"
    (corpus / "artikel.md").write_text(
        head.format(title="Die Logistik-Datenlotsin im Porträt", kind="article")
        + "## Herkunft\n\nEine Datenlotsin kommt oft aus dem Controlling oder der Disposition.\n",
        encoding="utf-8",
    )
    (corpus / "profil.md").write_text(
        head.format(title="Rollenbeschreibung Datenlotsin", kind="role_profile")
        + "## Anforderungen\n\nDie Datenlotsin kommt aus der Disposition oder dem Controlling "
        "und kennt die Lagerprozesse.\n",
        encoding="utf-8",
    )
    (corpus / "kantine.md").write_text(  # far from both: the scale the two are close on
        head.format(title="Speiseplan der Kantine", kind="faq")
        + "## Mittagessen\n\nMontags gibt es Eintopf, freitags Fisch.\n",
        encoding="utf-8",
    )
    settings = make_settings(tmp_path, corpus, **store_overrides)
    kb = KnowledgeBase(settings, shared_embeddings)
    ingest_corpus(kb, corpus)
    retriever = build_assistant(settings, kb).retriever
    plain = retriever.retrieve("Woher kommt eine Datenlotsin?")
    named = retriever.retrieve("Woher kommt eine Datenlotsin laut dem Artikel?")
    assert named[0].source == "artikel.md"
    # The adapter's term differs between the two wordings (search/adapter.py); the rest is
    # the same ranking plus the bonus.
    assert named[0].score - named[0].adapted > next(
        p.score - p.adapted for p in plain if p.source == "artikel.md"
    )
    english = retriever.retrieve(
        "Where does a Datenlotsin come from, according to the job profile?"
    )
    assert english[0].source == "profil.md"
    off = make_settings(tmp_path, corpus, document_kind_bonus=0.0, **store_overrides)
    unboosted = build_assistant(off, kb).retriever.retrieve(
        "Woher kommt eine Datenlotsin laut dem Artikel?"
    )
    assert next(p.score for p in unboosted if p.source == "artikel.md") < named[0].score
