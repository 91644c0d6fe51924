"""The per-version index (search/snapshot.py) on real Chroma: a version indexed in the background
while the previous index answers, replaced and deleted sources never retrieved meanwhile, another
process's ingest seen, and one read of the store's version marker per question at most."""

from __future__ import annotations

import threading

import pytest
from conftest import STORE_MODES, make_settings, run_ingest, write_markdown

from assistant.answering.pipeline import build_assistant
from assistant.ingest.corpus import ingest_corpus
from assistant.search.snapshot import CorpusIndex
from assistant.store.knowledge_base import KnowledgeBase

pytestmark = pytest.mark.parametrize("store_mode", STORE_MODES, indirect=True)

QUESTION = "Welche Bahnklasse wird bei Reisen zu KI-Konferenzen erstattet?"


@pytest.fixture
def held_builds(monkeypatch):
    """Background builds of a new version's index wait until the test releases them."""
    release = threading.Event()
    read = CorpusIndex.read.__func__  # type: ignore[attr-defined]

    def held(cls, kb, previous=None, **options):
        if previous is not None and threading.current_thread().name == "corpus-index":
            assert release.wait(60)
        return read(cls, kb, previous, **options)

    monkeypatch.setattr(CorpusIndex, "read", classmethod(held))
    yield release
    release.set()


def open_store(tmp_path, shared_embeddings, store_overrides):
    corpus = tmp_path / "corpus"
    write_markdown(corpus / "reisekosten.md")
    settings = make_settings(tmp_path, corpus, **store_overrides)
    kb = KnowledgeBase(settings, shared_embeddings)
    assert ingest_corpus(kb, corpus).ok
    assistant = build_assistant(settings, kb)
    # Every new version in the background, the store's marker read on every question.
    assistant.retriever.index.background_from = 0
    assistant.retriever.index.check_s = 0.0
    return corpus, settings, kb, assistant


def texts(passages) -> str:
    return " ".join(p.content for p in passages)


def test_a_replaced_source_is_never_retrieved_while_its_index_is_built(
    tmp_path, shared_embeddings, store_overrides, held_builds
):
    corpus, _, kb, assistant = open_store(tmp_path, shared_embeddings, store_overrides)
    retriever = assistant.retriever
    assert "2. Klasse" in texts(retriever.retrieve(QUESTION))
    old_index = retriever.index.current()

    path = corpus / "reisekosten.md"
    path.write_text(path.read_text(encoding="utf-8").replace("2. Klasse", "1. Klasse"), "utf-8")
    assert ingest_corpus(kb, corpus).ok  # this process wrote: the marker moved at once

    passages = retriever.retrieve(QUESTION)
    assert retriever.index.current() is old_index  # still building
    assert "2. Klasse" not in texts(passages)
    assert "1. Klasse" in texts(passages)  # found by its cosine meanwhile
    top = next(p for p in passages if "Erstattung" in p.section)
    assert all("2. Klasse" not in c.content for c in retriever.subsections(top))

    held_builds.set()
    retriever.index.wait(60)
    assert retriever.index.current().version == kb.version()
    passages = retriever.retrieve(QUESTION)
    assert "1. Klasse" in texts(passages) and "2. Klasse" not in texts(passages)


def test_a_deleted_source_is_gone_at_once(
    tmp_path, shared_embeddings, store_overrides, held_builds
):
    _, _, kb, assistant = open_store(tmp_path, shared_embeddings, store_overrides)
    retriever = assistant.retriever
    assert retriever.retrieve(QUESTION)
    assert kb.remove_source("reisekosten.md")
    assert retriever.retrieve(QUESTION) == []
    assert not retriever.readable("reisekosten.md", frozenset({"all"}))
    answer = assistant.ask(QUESTION)
    assert not answer.citations


def test_another_process_replacing_a_source(
    tmp_path, shared_embeddings, store_overrides, held_builds
):
    """Another process's ingest: while this process still answers from its previous index (and,
    embedded, its previous client), the replaced text is never retrieved; then the new one is."""
    corpus, settings, kb, assistant = open_store(tmp_path, shared_embeddings, store_overrides)
    retriever = assistant.retriever
    assert "2. Klasse" in texts(retriever.retrieve(QUESTION))

    path = corpus / "reisekosten.md"
    path.write_text(path.read_text(encoding="utf-8").replace("2. Klasse", "1. Klasse"), "utf-8")
    assert run_ingest(corpus, settings.data_dir, store_overrides)["updated"] == ["reisekosten.md"]

    assert "2. Klasse" not in texts(retriever.retrieve(QUESTION))
    held_builds.set()
    retriever.index.wait(60)
    assert retriever.index.current().version == kb.stored_version()
    assert "1. Klasse" in texts(retriever.retrieve(QUESTION))


def test_the_version_marker_is_read_once_per_question_at_most(
    tmp_path, shared_embeddings, store_overrides, monkeypatch
):
    """A question retrieves several times (its parts too) and reads the lexicon and subsections;
    the marker is read for the first of these only."""
    _, _, kb, assistant = open_store(tmp_path, shared_embeddings, store_overrides)
    keeper = assistant.retriever.index
    keeper.check_s = 600.0
    reads = []
    stored_version = kb.stored_version
    monkeypatch.setattr(kb, "stored_version", lambda: reads.append(1) or stored_version())
    for n in range(1, 4):
        keeper._checked = float("-inf")  # the last read is long ago
        answer = assistant.ask("Wer genehmigt den Antrag, und wie viel Konferenzgebühr gibt es?")
        assert answer.answered
        assert len(reads) == n


def test_an_index_built_from_the_previous_one_equals_one_built_from_scratch(
    tmp_path, shared_embeddings, store_overrides
):
    """Only new chunks are read and stemmed and only new units' metadata read; the result is the
    same index."""
    corpus, _, kb, assistant = open_store(tmp_path, shared_embeddings, store_overrides)
    first = CorpusIndex.read(kb)
    path = corpus / "reisekosten.md"
    path.write_text(path.read_text(encoding="utf-8").replace("2. Klasse", "1. Klasse"), "utf-8")
    write_markdown(corpus / "neu" / "reisen.md")
    assert ingest_corpus(kb, corpus).ok
    reused, fresh = CorpusIndex.read(kb, previous=first), CorpusIndex.read(kb)
    assert reused.ids == fresh.ids and reused.stems == fresh.stems
    assert reused.rows == fresh.rows
    assert set(reused.source_meta) == set(fresh.source_meta) == {"reisekosten.md", "neu/reisen.md"}
    # Per source only what the versions need: title, version facts, audience flags.
    assert reused.source_meta == fresh.source_meta
    assert fresh.source_meta["reisekosten.md"] == {
        "source": "reisekosten.md",
        "title": "Reisekosten für KI-Konferenzen",
        "effective_date": "2025-03-01",
        "aud_all": True,
    }
    units = kb.read_all([], units=True)["ids"]
    assert reused.units(units) == fresh.units(units)
    assert all(unit is not None and unit[0] >= 0 for unit in fresh.units(units))
    query = reused.bm25.get_tokens_ids(["bahnfahrt", "klass", "antrag"])
    assert (reused.bm25.get_scores(query) == fresh.bm25.get_scores(query)).all()
    everyone = frozenset({"all"})
    for token in ("bahnfahrt", "antrag", "fehlt"):
        expected = sum(token in s.split(" ") for s in fresh.stems)
        assert reused.document_frequency(token, everyone) == expected


def test_document_frequencies_are_remembered_per_reader_and_version(
    tmp_path, shared_embeddings, store_overrides
):
    """Counted once per stem and group set, the same on every later question; a restricted
    document counts only for its readers, and a new version counts anew."""
    corpus, _, kb, _ = open_store(tmp_path, shared_embeddings, store_overrides)
    hr_only = corpus / "hr.md"
    write_markdown(hr_only)
    hr_only.write_text(
        hr_only.read_text(encoding="utf-8").replace("audience: all", "audience: hr"), "utf-8"
    )
    assert ingest_corpus(kb, corpus).ok
    index = CorpusIndex.read(kb)
    everyone, hr = frozenset({"all"}), frozenset({"all", "hr"})

    def counted(groups: frozenset[str]) -> int:
        mask = index.mask(groups)
        return sum(
            bool(mask[i]) and "bahnfahrt" in stems.split(" ") for i, stems in enumerate(index.stems)
        )

    assert 0 < counted(everyone) < counted(hr)
    for _ in range(2):
        assert index.document_frequency("bahnfahrt", everyone) == counted(everyone)
        assert index.document_frequency("bahnfahrt", hr) == counted(hr)
        assert index.document_frequency("fehlt", hr) == 0
    hr_only.unlink()
    assert ingest_corpus(kb, corpus).ok
    after = CorpusIndex.read(kb, previous=index)
    assert after.document_frequency("bahnfahrt", hr) == counted(everyone)


def test_a_failing_background_build_leaves_the_previous_index_answering(
    tmp_path, shared_embeddings, store_overrides, monkeypatch
):
    """A build that fails (store unreadable for a moment) is logged; the previous index answers,
    and the build is not started again on every question."""
    _, _, kb, assistant = open_store(tmp_path, shared_embeddings, store_overrides)
    retriever = assistant.retriever
    previous = retriever.index.current()
    read = CorpusIndex.read.__func__  # type: ignore[attr-defined]
    builds = []

    def failing(cls, kb, previous=None, **options):
        if previous is not None:
            builds.append(1)
            raise OSError("store unreadable")
        return read(cls, kb, previous, **options)

    monkeypatch.setattr(CorpusIndex, "read", classmethod(failing))
    kb.bump_version()
    for _ in range(3):
        assert "2. Klasse" in texts(retriever.retrieve(QUESTION))
        retriever.index.wait(60)
    assert retriever.index.current() is previous
    assert len(builds) == 1


def test_a_new_document_is_found_while_its_index_is_built(
    tmp_path, shared_embeddings, store_mode, store_overrides, held_builds
):
    """Units name their chunks only through the index; while another process's new document
    waits for it, the chunks themselves are searched, so a Chroma server's replica finds it at
    once (an embedded store sees another process's vectors only once reopened, with the new
    index)."""
    corpus, settings, kb, assistant = open_store(tmp_path, shared_embeddings, store_overrides)
    retriever = assistant.retriever
    question = "Wer genehmigt Drohnenflüge über dem Lager?"
    assert all(p.source != "drohnen.md" for p in retriever.retrieve(question))
    (corpus / "drohnen.md").write_text(
        "---\ntitle: Drohnen\n---\n# Drohnen\n\n## Genehmigung\n\n"
        "Drohnenflüge über dem Lager genehmigt die Werkfeuerwehr.\n",
        encoding="utf-8",
    )
    assert run_ingest(corpus, settings.data_dir, store_overrides)["added"] == ["drohnen.md"]
    behind = retriever.retrieve(question)
    assert retriever.index.current().version != kb.stored_version()  # still building
    if store_mode == "server":
        assert behind[0].source == "drohnen.md"
    held_builds.set()
    retriever.index.wait(60)
    assert retriever.retrieve(question)[0].source == "drohnen.md"  # now through its units


def test_without_unit_search_the_chunks_are_searched(tmp_path, shared_embeddings, store_overrides):
    corpus = tmp_path / "corpus"
    write_markdown(corpus / "reisekosten.md")
    settings = make_settings(tmp_path, corpus, unit_candidates=0, **store_overrides)
    kb = KnowledgeBase(settings, shared_embeddings)
    assert ingest_corpus(kb, corpus).ok
    passages = build_assistant(settings, kb).retriever.retrieve(QUESTION)
    assert passages and "2. Klasse" in texts(passages)
    assert all(not p.matched for p in passages)  # ranked on the chunks alone
