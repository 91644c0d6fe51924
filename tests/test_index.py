"""Incremental ingestion into real Chroma: add, change, delete, re-run, bad files, lock; each test
runs on the embedded store and on a Chroma server with PostgreSQL records."""

from __future__ import annotations

import shutil

import pytest
from conftest import STORE_MODES, make_settings, write_markdown

from assistant.ingest import chunking
from assistant.ingest.corpus import ingest_corpus
from assistant.store.knowledge_base import KnowledgeBase
from assistant.store.locks import IngestBusyError

pytestmark = pytest.mark.parametrize("store_mode", STORE_MODES, indirect=True)


def stored_ids(kb):
    return set(kb.collection.get(include=[])["ids"])


def test_first_ingest_stores_every_file(small_corpus, kb_factory, store_mode):
    kb = kb_factory(small_corpus)
    report = ingest_corpus(kb, small_corpus)
    assert report.ok and report.files_seen == 5
    assert sorted(report.added) == sorted(
        [
            "reisekosten.md",
            "prozesse/wartung.txt",
            "coffee.html",
            "rollen/datenkurator.docx",
            "chatprotokolle.pdf",
        ]
    )
    assert kb.count() == report.chunks_total == report.chunks_embedded > 0
    assert kb.collection.configuration["hnsw"]["space"] == "cosine"
    # Stored without an embedding function: nobody opening it loads Chroma's downloading default.
    assert kb.collection.configuration["embedding_function"] is None
    assert kb.stored_sources() == set(report.added)
    # In server mode nothing of the store is in the data dir: vectors on the Chroma server,
    # ingest records in PostgreSQL.
    data = kb.settings.data_dir
    embedded = store_mode == "embedded"
    assert (data / "chroma").exists() == embedded == (data / "records.sqlite").exists()


def test_the_index_search_breadth_follows_the_settings_also_for_an_older_store(
    small_corpus, kb_factory
):
    """Chroma's ef_search (100 by default) made the unit search approximate: 1.2 % of a
    question's 80 nearest units missed, varying with each load of the index. Both collections
    search as broadly as the settings say, and a store made with another breadth is changed on
    opening, its contents kept."""
    kb = kb_factory(small_corpus, hnsw_ef_search=100)
    ingest_corpus(kb, small_corpus)
    ids = stored_ids(kb)
    assert [
        c.configuration["hnsw"]["ef_search"] for c in (kb.collection, kb.unit_store._collection)
    ] == [100, 100]
    again = kb_factory(small_corpus, hnsw_ef_search=240)
    for name in (again.collection.name, again.unit_store._collection.name):
        stored = again.client.get_collection(name).configuration["hnsw"]
        assert stored["ef_search"] == 240 and stored["space"] == "cosine"
    assert stored_ids(again) == ids


def test_rerun_embeds_nothing_and_keeps_ids(small_corpus, kb_factory, shared_embeddings):
    kb = kb_factory(small_corpus)
    ingest_corpus(kb, small_corpus)
    ids, version = stored_ids(kb), kb.version()
    before = shared_embeddings.embedded
    report = ingest_corpus(kb, small_corpus)
    assert shared_embeddings.embedded == before
    assert report.chunks_embedded == 0 and len(report.skipped) == 5
    assert not report.added and not report.updated and not report.deleted
    assert stored_ids(kb) == ids and kb.version() == version


def test_changed_file_replaces_its_chunks_only(small_corpus, kb_factory, shared_embeddings):
    kb = kb_factory(small_corpus)
    ingest_corpus(kb, small_corpus)
    md = small_corpus / "reisekosten.md"
    md.write_text(md.read_text(encoding="utf-8").replace("800 Euro", "950 Euro"), encoding="utf-8")
    before, count, version = shared_embeddings.embedded, kb.count(), kb.version()
    report = ingest_corpus(kb, small_corpus)
    assert report.updated == ["reisekosten.md"] and len(report.skipped) == 4
    # The changed chunk and its units (sentences, bullets) are embedded, nothing else.
    assert report.chunks_embedded == 1 and report.units_embedded >= 1
    assert shared_embeddings.embedded - before == report.chunks_embedded + report.units_embedded
    assert report.chunks_deleted == 1 and kb.count() == count
    texts = kb.collection.get(where={"source": "reisekosten.md"})["documents"]
    assert any("950 Euro" in t for t in texts) and not any("800 Euro" in t for t in texts)
    assert kb.version() != version


def test_a_new_unit_splitter_re_embeds_units_only_and_moves_the_version(
    small_corpus, kb_factory, shared_embeddings, monkeypatch
):
    """After an upgrade that splits passages into units differently, the next ingest replaces
    the units (searched, and quoted by position) and tells running apps; no chunk is embedded."""
    kb = kb_factory(small_corpus)
    ingest_corpus(kb, small_corpus)
    ids, version = stored_ids(kb), kb.version()
    units_before = set(kb.unit_store._collection.get(include=[])["ids"])
    split = chunking.split_units
    monkeypatch.setattr(chunking, "split_units", lambda text: split(text)[:1])
    before = shared_embeddings.embedded
    report = ingest_corpus(kb, small_corpus)
    assert report.chunks_embedded == 0 and stored_ids(kb) == ids
    assert "reisekosten.md" in report.updated and not report.added
    units_after = set(kb.unit_store._collection.get(include=[])["ids"])
    assert units_after < units_before  # fewer units, none left over from the old split
    assert shared_embeddings.embedded == before  # the units kept are the stored ones
    assert kb.version() != version


def test_a_document_of_more_units_than_one_write_batch_is_skipped_when_unchanged(
    small_corpus, kb_factory, shared_embeddings
):
    """langchain's indexing API writes in batches of 100; with "incremental" cleanup it dropped
    a long document's units after its first batch and embedded them again in the next, on
    every ingest (and readers missed them in between). An unchanged long file costs nothing."""
    items = "\n".join(f"- Regel {i}: Belege werden {i} Tage aufbewahrt." for i in range(1, 161))
    (small_corpus / "lang.md").write_text(f"# Aufbewahrung\n\n{items}\n", encoding="utf-8")
    kb = kb_factory(small_corpus)
    first = ingest_corpus(kb, small_corpus)
    assert first.units_embedded > 160
    before, version = shared_embeddings.embedded, kb.version()
    report = ingest_corpus(kb, small_corpus)
    assert report.units_embedded == 0 and shared_embeddings.embedded == before
    assert "lang.md" in report.skipped and kb.version() == version


def test_removed_file_is_deleted(small_corpus, kb_factory):
    kb = kb_factory(small_corpus)
    ingest_corpus(kb, small_corpus)
    (small_corpus / "coffee.html").unlink()
    report = ingest_corpus(kb, small_corpus)
    assert report.deleted == ["coffee.html"]
    assert "coffee.html" not in kb.stored_sources()
    assert kb.records.list_keys(group_ids=["coffee.html"]) == []


def test_same_content_gives_same_ids_in_a_fresh_store(
    small_corpus, tmp_path, kb_factory, new_store
):
    first = kb_factory(small_corpus)
    ingest_corpus(first, small_corpus)
    other = tmp_path / "other"
    other.mkdir()
    second = KnowledgeBase(make_settings(other, small_corpus, **new_store()), first.embeddings)
    assert second.count() == 0
    ingest_corpus(second, small_corpus)
    assert stored_ids(first) == stored_ids(second)


def test_bad_files_reported_rest_ingested(small_corpus, kb_factory):
    (small_corpus / "leer.txt").write_bytes(b"")
    (small_corpus / "tabelle.xlsx").write_bytes(b"PK\x03\x04")
    (small_corpus / "kaputt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj garbage")
    kb = kb_factory(small_corpus)
    report = ingest_corpus(kb, small_corpus)
    failed = {f["source"]: f["reason"] for f in report.failed}
    assert set(failed) == {"leer.txt", "tabelle.xlsx", "kaputt.pdf"}
    assert "empty" in failed["leer.txt"] and "unsupported" in failed["tabelle.xlsx"]
    assert not report.ok and len(report.added) == 5


def test_file_that_breaks_keeps_what_was_stored(small_corpus, kb_factory):
    kb = kb_factory(small_corpus)
    ingest_corpus(kb, small_corpus)
    before = kb.collection.get(where={"source": "chatprotokolle.pdf"})["ids"]
    (small_corpus / "chatprotokolle.pdf").write_bytes(b"not a pdf any more")
    report = ingest_corpus(kb, small_corpus)
    assert [f["source"] for f in report.failed] == ["chatprotokolle.pdf"]
    assert kb.collection.get(where={"source": "chatprotokolle.pdf"})["ids"] == before


def test_new_file_added_later(small_corpus, kb_factory):
    kb = kb_factory(small_corpus)
    ingest_corpus(kb, small_corpus)
    shutil.copy(small_corpus / "reisekosten.md", small_corpus / "kopie.md")
    write_markdown(small_corpus / "neu" / "regel.md")
    report = ingest_corpus(kb, small_corpus)
    assert sorted(report.added) == ["kopie.md", "neu/regel.md"]


def test_second_ingest_at_once_is_refused(small_corpus, kb_factory):
    kb = kb_factory(small_corpus)
    with kb.locks.ingest(), pytest.raises(IngestBusyError, match="another ingest is running"):
        ingest_corpus(kb, small_corpus)


def test_missing_corpus_dir(tmp_path, kb_factory):
    kb = kb_factory(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="corpus folder not found"):
        ingest_corpus(kb, tmp_path / "nope")


def test_whole_collection_is_read_in_pages(small_corpus, kb_factory, monkeypatch):
    """read_all() pages through the store (Chroma cannot return the metadata of more than
    32,766 records in one call) and gives what one get() gives."""
    kb = kb_factory(small_corpus)
    ingest_corpus(kb, small_corpus)
    whole = kb.collection.get(include=["documents", "metadatas"])
    monkeypatch.setattr("assistant.store.knowledge_base.READ_PAGE", 2)
    paged = kb.read_all(["documents", "metadatas"])
    assert kb.count() > 2
    assert paged["ids"] == list(whole["ids"])
    assert paged["documents"] == list(whole["documents"])
    assert paged["metadatas"] == list(whole["metadatas"])
    assert kb.stored_sources() == {m["source"] for m in whole["metadatas"]}
    assert len(kb.read_all([], units=True)["ids"]) == kb.unit_count()
