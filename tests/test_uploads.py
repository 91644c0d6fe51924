"""Admin uploads against a real store (embedded, and Chroma server + PostgreSQL): indexed at once,
listed, re-indexed, deleted; bad files refused with a reason and nothing stored lost."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import STORE_MODES, write_markdown, write_pdf

from assistant.admin.upload_records import UploadMeta, uploads_table
from assistant.admin.uploads import DocumentAdmin
from assistant.audience import reader_groups
from assistant.ingest.corpus import chunk as chunk_document
from assistant.ingest.corpus import ingest_corpus, replace_source
from assistant.ingest.corpus import read as read_document
from assistant.search.retrieval import PUBLIC, HybridRetriever

pytestmark = pytest.mark.parametrize("store_mode", STORE_MODES, indirect=True)

DRONES_V1 = (
    "# Drohnenlieferung an Standorte\n\n## Regel\n\nDrohnenlieferungen an Lagerstandorte sind "
    "nur werktags zwischen 8 und 16 Uhr erlaubt. Die Freigabe erteilt die Standortleitung.\n"
)
DRONES_V2 = DRONES_V1.replace("8 und 16", "7 und 19").replace("Standortleitung", "Logistikleitung")
QUESTION = "Wann sind Drohnenlieferungen an Lagerstandorte erlaubt?"


@pytest.fixture
def admin(tmp_path, kb_factory):
    corpus = tmp_path / "corpus"
    write_markdown(corpus / "reisekosten.md")
    kb = kb_factory(corpus)
    assert ingest_corpus(kb, corpus).ok
    documents = DocumentAdmin(kb.settings, kb)
    return documents, HybridRetriever(kb, kb.settings)


def sources(retriever, question=QUESTION, groups=PUBLIC):
    return [p.source for p in retriever.retrieve(question, k=3, groups=groups)]


def test_an_upload_is_answerable_at_once_and_listed_with_its_metadata(admin):
    documents, retriever = admin
    assert not any(s.startswith("upload:") for s in sources(retriever))  # BM25 built before
    meta = UploadMeta(
        title="Drohnen-Richtlinie",
        owner="Logistik – Kim Weber",
        effective_date="2025-01-01",
        expiry_date="2030-12-31",
        version="1",
    )
    result = documents.upload("../../Richtlinie Drohnen.md", DRONES_V1.encode(), meta, "hr1")
    assert result.status == "indexed", result.error
    assert result.chunks == 1 and result.original_name == "Richtlinie Drohnen.md"
    # Stored under a generated name inside the data dir; the original name is metadata only.
    stored = list((documents.settings.data_dir / "uploads").iterdir())
    assert [p.name for p in stored] == [result.source.removeprefix("upload:")]
    assert "Drohnen" not in stored[0].name

    best = retriever.retrieve(QUESTION, k=1)[0]
    assert best.source == result.source
    assert best.title == "Drohnen-Richtlinie"
    assert "8 und 16 Uhr" in best.text

    row = next(r for r in documents.documents() if r.source == result.source)
    assert (row.kind, row.chunks, row.owner, row.status) == ("upload", 1, meta.owner, "current")
    assert (row.effective_date, row.expiry_date, row.version) == ("2025-01-01", "2030-12-31", "1")
    assert (row.original_name, row.uploaded_by, row.audience) == (
        "Richtlinie Drohnen.md",
        "hr1",
        "all",
    )
    assert row.last_ingest  # from the ingest records
    corpus_row = next(r for r in documents.documents() if r.source == "reisekosten.md")
    assert corpus_row.kind == "corpus" and corpus_row.owner == "Finanzen – Jana Roth"


def test_the_corpus_ingest_keeps_uploads_and_delete_removes_them_at_once(admin):
    documents, retriever = admin
    source = documents.upload("drohnen.md", DRONES_V1.encode(), UploadMeta(), "hr1").source
    report = ingest_corpus(documents.kb, documents.settings.corpus_dir)
    assert report.ok and not report.deleted
    assert sources(retriever)[0] == source
    # The title comes from the document's own heading when the form leaves it empty.
    assert retriever.retrieve(QUESTION, k=1)[0].title == "Drohnenlieferung an Standorte"

    assert documents.delete(source) == 1
    assert documents.kb.collection.get(where={"source": source}, include=[])["ids"] == []
    assert source not in sources(retriever)  # BM25 rebuilt for the new corpus version
    assert source not in {r.source for r in documents.documents()}
    assert not any((documents.settings.data_dir / "uploads").iterdir())
    with pytest.raises(KeyError, match="no uploaded document"):
        documents.delete(source)


@pytest.mark.parametrize(
    ("name", "data", "meta", "reason"),
    [
        ("tool.exe", b"MZ\x90\x00", UploadMeta(), "unsupported file type '.exe'"),
        ("leer.md", b"", UploadMeta(), "the file is empty"),
        ("gross.md", b"# T\n\n" + b"x" * 3000, UploadMeta(), "larger than the limit of 0.002 MB"),
        ("scan.pdf", b"%PDF-1.4 kaputt", UploadMeta(), "PDF"),
        ("a.md", b"# T\n\ntext", UploadMeta(effective_date="31.12.2025"), "like 2025-01-31"),
        (
            "a.md",
            b"# T\n\ntext",
            UploadMeta(effective_date="2026-01-01", expiry_date="2025-01-01"),
            "expiry_date is before effective_date",
        ),
        ("a.md", b"# T\n\ntext", UploadMeta(audience=" , "), "names no group"),
        ("a.md", b"# T\n\ntext", UploadMeta(owner="x\ny"), "owner must be one line"),
    ],
)
def test_bad_uploads_are_refused_with_the_reason_and_nothing_is_stored(
    tmp_path, kb_factory, name, data, meta, reason
):
    corpus = tmp_path / "corpus"
    write_markdown(corpus / "reisekosten.md")
    kb = kb_factory(corpus, max_file_mb=0.002)
    assert ingest_corpus(kb, corpus).ok
    documents = DocumentAdmin(kb.settings, kb)
    before, version = kb.count(), kb.version()

    result = documents.upload(name, data, meta, "hr1")

    assert result.status == "failed"
    assert reason in result.error
    assert (kb.count(), kb.version()) == (before, version)
    assert documents.uploads() == []
    uploads = kb.settings.data_dir / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())


def test_a_new_version_replaces_the_old_one_in_answers(admin):
    documents, retriever = admin
    old = documents.upload(
        "v1.md",
        DRONES_V1.encode(),
        UploadMeta(title="Drohnen-Richtlinie", version="1", effective_date="2024-01-01"),
        "hr1",
    )
    new = documents.upload(
        "v2.md",
        DRONES_V2.encode(),
        UploadMeta(title="Drohnen-Richtlinie", version="2", effective_date="2025-01-01"),
        "hr1",
    )
    found = sources(retriever)
    assert new.source in found and old.source not in found
    statuses = {r.source: r.status for r in documents.documents()}
    assert (statuses[old.source], statuses[new.source]) == ("superseded", "current")


def test_an_expired_upload_is_still_found_but_marked(admin):
    documents, retriever = admin
    result = documents.upload(
        "alt.md", DRONES_V1.encode(), UploadMeta(expiry_date="2024-12-31"), "hr1"
    )
    best = retriever.retrieve(QUESTION, k=1)[0]
    assert best.source == result.source
    assert (best.validity.status, best.validity.since) == ("expired", "2024-12-31")


def test_the_audience_of_an_upload_is_enforced(admin):
    documents, retriever = admin
    result = documents.upload("hr.md", DRONES_V1.encode(), UploadMeta(audience="hr"), "hr1")
    assert result.source not in sources(retriever)
    assert result.source in sources(retriever, groups=reader_groups(["hr"]))


def test_reindex_restores_a_missing_file_from_the_database(admin):
    """Another replica (or a wiped data dir) has the record but not the file."""
    documents, retriever = admin
    result = documents.upload("drohnen.md", DRONES_V1.encode(), UploadMeta(), "hr1")
    path = documents.file_path(result.source)
    path.unlink()

    again = documents.reindex(result.source)

    assert again.status == "indexed" and again.chunks == 1
    assert path.read_bytes() == DRONES_V1.encode()
    assert sources(retriever)[0] == result.source


def test_reindex_all_covers_the_corpus_and_every_upload(admin, tmp_path):
    documents, _ = admin
    documents.upload("drohnen.md", DRONES_V1.encode(), UploadMeta(), "hr1")
    write_pdf(documents.settings.corpus_dir / "chatprotokolle.pdf")
    results = documents.reindex_all()
    by_source = {r.source: r.status for r in results}
    assert by_source["chatprotokolle.pdf"] == "indexed"
    assert by_source["reisekosten.md"] == "indexed"
    assert [s for s in by_source if s.startswith("upload:")] != []
    assert all(status == "indexed" for status in by_source.values())


def test_what_a_crash_left_is_listed_deletable_and_reconciled(admin):
    """Chunks without a record (a crash before the record was written) and a record still
    `pending` (a crash while indexing) are both listed, both deletable, and reconcile() removes
    whatever is left of them; finished uploads and corpus files stay."""
    documents, retriever = admin
    kept = documents.upload("behalten.md", DRONES_V1.encode(), UploadMeta(), "hr1")
    kb = documents.kb
    doc = read_document(
        kb.settings, documents.settings.corpus_dir / "reisekosten.md", documents.settings.corpus_dir
    )

    def orphan(name: str) -> str:
        source = f"upload:{name}"
        chunks = chunk_document(kb.settings, type(doc)(source, doc.format, doc.metadata, doc.pages))
        replace_source(kb, source, chunks)
        return source

    listed_orphan = orphan("a1.md")
    assert listed_orphan in [r.source for r in documents.documents()]
    assert documents.delete(listed_orphan) > 0  # no record, still deletable
    assert listed_orphan not in kb.stored_sources()

    crashed = orphan("b2.md")
    with documents.engine.begin() as conn:  # a record the crash left `pending`
        conn.execute(
            uploads_table.insert().values(
                id="b2", source="upload:b2.md", original_name="b.md", title="b", audience="",
                uploaded_by="hr1", uploaded_at=datetime.now(UTC), size=1, sha256="", content=b"x",
                status="pending",
            )
        )  # fmt: skip
    (documents.folder / "b2.md").write_bytes(b"x")
    no_record = orphan("c3.md")
    assert next(r for r in documents.documents() if r.source == crashed).status == "indexing"

    assert documents.reconcile() == 2
    stored = kb.stored_sources()
    assert crashed not in stored and no_record not in stored
    assert kept.source in stored and "reisekosten.md" in stored
    assert [p.name for p in documents.folder.iterdir()] == [kept.source.removeprefix("upload:")]
    assert [r.source for r in documents.documents() if r.kind == "upload"] == [kept.source]
