"""Documents HR uploads in the browser: stored, indexed at once, listed, re-indexed, deleted.

An upload is kept twice: the bytes and the form's metadata in the app database (table `uploads`,
the record every replica shares), and a file under a generated name in `<data dir>/uploads/` (what
the loaders read and `/files/` serves; written again from the database when a replica lacks it).
The original file name is metadata only. In the store an upload's chunks have the source
`upload:<generated name>`, so the corpus ingest never mistakes them for deleted corpus files.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import (
    delete,
    insert,
    select,
    update,
)

from assistant.admin.upload_records import (
    _RECORD_COLUMNS,
    PENDING,
    DocumentRow,
    UploadError,
    UploadMeta,
    UploadResult,
    metadata,
    uploads_table,
)
from assistant.config import Settings
from assistant.ingest.corpus import chunk as chunk_document
from assistant.ingest.corpus import ingest_corpus, replace_source
from assistant.ingest.corpus import read as read_document
from assistant.ingest.documents import (
    DocumentError,
    SourceDocument,
    discover,
    source_name,
)
from assistant.ingest.formats import supported_suffixes
from assistant.search.validity import Versions
from assistant.store.database import create_tables, make_engine
from assistant.store.knowledge_base import UPLOAD_PREFIX, KnowledgeBase, is_upload
from assistant.store.locks import IngestBusyError

log = logging.getLogger(__name__)


class DocumentAdmin:
    """Upload, list, re-index and delete documents of one knowledge base."""

    def __init__(self, settings: Settings, kb: KnowledgeBase) -> None:
        self.settings = settings
        self.kb = kb
        self.folder = settings.data_dir / "uploads"
        self.engine = make_engine(settings.app_db_url)
        create_tables(self.engine, metadata)

    # --- upload ---------------------------------------------------------------------------

    def upload(self, original_name: str, data: bytes, meta: UploadMeta, who: str) -> UploadResult:
        """Store, load, chunk and index one file: afterwards it is there whole (record, file,
        chunks) or not at all, even if the process dies halfway (see reconcile)."""
        result = UploadResult(original_name=_display_name(original_name), status="failed")
        try:
            meta = meta.checked()
            suffix = _checked_suffix(original_name)
            if not data:
                raise UploadError("the file is empty")
            limit = int(self.settings.max_file_mb * 1_000_000)
            if len(data) > limit:
                # Callers read at most one byte past the limit: the size is not known, only
                # that it is over.
                raise UploadError(
                    f"the file is larger than the limit of {self.settings.max_file_mb:g} MB"
                )
            source, chunks = self._store(result.original_name, suffix, data, meta, who)
        except (UploadError, DocumentError) as exc:
            result.error = str(exc)
            return result
        except (PermissionError, IngestBusyError) as exc:  # read-only store, another writer
            result.error = str(exc)
            return result
        log.info("uploaded %s as %s: %d chunks", result.original_name, source, chunks)
        return replace(result, status="indexed", source=source, chunks=chunks)

    def _store(
        self, name: str, suffix: str, data: bytes, meta: UploadMeta, who: str
    ) -> tuple[str, int]:
        """Record (`pending`), file, chunks, then the record `indexed`: all under the store's
        write lock. A failure takes back what was written; a crash leaves a `pending` record
        that the next start's reconcile() removes with whatever else was written."""
        upload_id = uuid.uuid4().hex
        stored = f"{upload_id}{suffix}"
        source = UPLOAD_PREFIX + stored
        with self.kb.writing():
            with self.engine.begin() as conn:
                conn.execute(
                    insert(uploads_table).values(
                        id=upload_id,
                        source=source,
                        original_name=name,
                        title=meta.title or name,
                        audience=meta.audience,
                        owner=meta.owner,
                        effective_date=meta.effective_date,
                        expiry_date=meta.expiry_date,
                        version=meta.version,
                        document_id=meta.document_id,
                        uploaded_by=who,
                        uploaded_at=datetime.now(UTC),
                        size=len(data),
                        sha256=hashlib.sha256(data).hexdigest(),
                        content=data,
                        status=PENDING,
                        error="",
                        chunks=0,
                    )
                )
            try:
                path = self._write_file(stored, data)
                doc = self._load(path, source, meta, name)
                chunks = chunk_document(self.kb.settings, doc)
                replace_source(self.kb, source, chunks)
                with self.engine.begin() as conn:
                    conn.execute(
                        update(uploads_table)
                        .where(uploads_table.c.source == source)
                        .values(
                            title=doc.title,
                            audience=doc.metadata.get("audience", ""),
                            owner=doc.metadata.get("owner", ""),
                            effective_date=doc.metadata.get("effective_date", ""),
                            expiry_date=doc.metadata.get("expiry_date", ""),
                            version=doc.metadata.get("version", ""),
                            document_id=doc.metadata.get("document_id", ""),
                            status="indexed",
                            chunks=len(chunks),
                            indexed_at=datetime.now(UTC),
                        )
                    )
            except BaseException:
                self._discard(source)
                raise
        return source, len(chunks)

    def _discard(self, source: str) -> None:
        """Take every trace of an upload back out: chunks, file, record (missing ones are fine)."""
        try:
            self.kb.remove_source(source)
        finally:
            (self.folder / source.removeprefix(UPLOAD_PREFIX)).unlink(missing_ok=True)
            with self.engine.begin() as conn:
                conn.execute(delete(uploads_table).where(uploads_table.c.source == source))

    def reconcile(self) -> int:
        """After a crash: remove uploads that did not finish (a `pending` record, chunks without
        a record, files and partial files without one). Runs under the write lock, so nobody is
        uploading right now; when another writer holds it, nothing is done (IngestBusyError)."""
        with self.kb.writing():
            with self.engine.connect() as conn:
                rows = conn.execute(select(uploads_table.c.source, uploads_table.c.status)).all()
            recorded = {source for source, status in rows if status != PENDING}
            broken = {source for source, status in rows if status == PENDING}
            broken |= {s for s in self.kb.stored_sources() if is_upload(s) and s not in recorded}
            for source in sorted(broken):
                log.warning("removing an upload that did not finish: %s", source)
                self._discard(source)
            if self.folder.is_dir():
                names = {s.removeprefix(UPLOAD_PREFIX) for s in recorded}
                for path in self.folder.iterdir():
                    if path.is_file() and path.name not in names:
                        path.unlink(missing_ok=True)
        return len(broken)

    def _load(self, path: Path, source: str, meta: UploadMeta, original_name: str):
        doc = read_document(self.kb.settings, path, self.folder)
        metadata = {**doc.metadata, **meta.overrides()}
        if not meta.title and metadata.get("title") == path.stem:
            # No heading and no title given: the generated name is no title, the original is.
            metadata["title"] = Path(_display_name(original_name)).stem
        return SourceDocument(source=source, format=doc.format, metadata=metadata, pages=doc.pages)

    def _write_file(self, stored: str, data: bytes) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / stored
        partial = path.with_name(f".{stored}.partial")
        partial.write_bytes(data)
        os.replace(partial, path)
        return path

    # --- list, re-index, delete -------------------------------------------------------------

    def uploads(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(*_RECORD_COLUMNS).order_by(uploads_table.c.uploaded_at)
            ).mappings()
            return [dict(r) for r in rows]

    def documents(self, today: date | None = None) -> list[DocumentRow]:
        """Every document: what the store holds (chunks, metadata, validity) and the uploads'
        records; corpus files that failed to load show as `not indexed`."""
        metadatas = self.kb.metadatas()
        versions = Versions(metadatas)
        first: dict[str, dict] = {}
        counts: dict[str, int] = {}
        for meta in metadatas:
            source = meta.get("source", "")
            first.setdefault(source, meta)
            counts[source] = counts.get(source, 0) + 1
        indexed = self.kb.last_indexed()
        uploads = {u["source"]: u for u in self.uploads()}
        rows = []
        for source in sorted(set(first) | set(uploads)):
            meta = first.get(source, {})
            upload = uploads.get(source, {})
            stored = source in first
            rows.append(
                DocumentRow(
                    source=source,
                    title=meta.get("title") or upload.get("title", ""),
                    kind="upload" if is_upload(source) else "corpus",
                    chunks=counts.get(source, 0),
                    audience=meta.get("audience") or upload.get("audience", ""),
                    owner=meta.get("owner") or upload.get("owner", ""),
                    effective_date=meta.get("effective_date") or upload.get("effective_date", ""),
                    expiry_date=meta.get("expiry_date") or upload.get("expiry_date", ""),
                    version=meta.get("version") or upload.get("version", ""),
                    status=(
                        "indexing"
                        if upload.get("status") == PENDING
                        else versions.validity(source, today).status
                        if stored
                        else "not indexed"
                    ),
                    last_ingest=_iso(indexed.get(source)),
                    original_name=upload.get("original_name", ""),
                    uploaded_by=upload.get("uploaded_by", ""),
                    error=upload.get("error", ""),
                )
            )
        return rows

    def delete(self, source: str) -> int:
        """Remove an uploaded document: its chunks leave the store (and so the BM25 index) at
        once, then its file and record. Whatever the list shows can be deleted, a record without
        chunks or chunks without a record too; KeyError when there is neither."""
        try:
            name = self._upload(source)["original_name"]
        except KeyError:
            if source not in self.kb.stored_sources():
                raise
            name = "(no record)"
        with self.kb.writing():
            removed = self.kb.remove_source(source)
            self._discard(source)
        log.info("deleted upload %s (%s): %d chunks", name, source, removed)
        return removed

    def reindex(self, source: str) -> UploadResult:
        """Load one document again (upload or corpus file) and replace its chunks."""
        if is_upload(source):
            upload = self._upload(source)
            path, name = self.file_path(source), upload["original_name"]
            meta = UploadMeta(
                **{k: upload[k] for k in UploadMeta.__dataclass_fields__ if upload.get(k)}
            )

            def load():
                return self._load(path, source, meta, name)
        else:
            path, name = self._corpus_path(source), source

            def load():
                return read_document(self.kb.settings, path, self.settings.corpus_dir)

        result = UploadResult(original_name=name, status="failed", source=source)
        try:
            chunks = chunk_document(self.kb.settings, load())
            replace_source(self.kb, source, chunks)
        except (DocumentError, PermissionError) as exc:
            result.error = str(exc)
            self._set_status(source, "failed", str(exc))
            return result
        self._set_status(source, "indexed", "", len(chunks))
        return replace(result, status="indexed", chunks=len(chunks))

    def reindex_all(self) -> list[UploadResult]:
        """The corpus folder (incremental ingest) and every upload again."""
        report = ingest_corpus(self.kb, self.settings.corpus_dir)
        results = [
            UploadResult(source, "indexed", source)
            for source in report.added + report.updated + report.skipped
        ]
        results += [
            UploadResult(f["source"], "failed", f["source"], error=f["reason"])
            for f in report.failed
        ]
        if report.error:
            results.append(UploadResult("corpus", "failed", error=report.error))
        results += [self.reindex(u["source"]) for u in self.uploads()]
        return results

    def file_path(self, source: str) -> Path:
        """The file of an upload, written again from the database if this machine lacks it."""
        self._upload(source)  # KeyError for an unknown upload
        path = self.folder / source.removeprefix(UPLOAD_PREFIX)
        if not path.exists():
            with self.engine.connect() as conn:
                data = conn.execute(
                    select(uploads_table.c.content).where(uploads_table.c.source == source)
                ).scalar_one()
            self._write_file(path.name, data)
        return path

    def document(self, source: str) -> SourceDocument:
        """An upload as the index read it, with the metadata HR entered (KeyError if unknown)."""
        upload = self._upload(source)
        meta = UploadMeta(
            **{k: upload[k] for k in UploadMeta.__dataclass_fields__ if upload.get(k)}
        )
        return self._load(self.file_path(source), source, meta, upload["original_name"])

    def original_name(self, source: str) -> str:
        return self._upload(source)["original_name"]

    def _upload(self, source: str) -> dict:
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(*_RECORD_COLUMNS).where(uploads_table.c.source == source))
                .mappings()
                .first()
            )
        if row is None:
            raise KeyError(f"no uploaded document {source}")
        return dict(row)

    def _corpus_path(self, source: str) -> Path:
        for path in discover(self.settings.corpus_dir):
            if source_name(path, self.settings.corpus_dir) == source:
                return path
        raise KeyError(f"no corpus file {source}")

    def _set_status(self, source: str, status: str, error: str, chunks: int | None = None) -> None:
        if not is_upload(source):
            return
        values: dict[str, object] = {"status": status, "error": error}
        if chunks is not None:
            values |= {"chunks": chunks, "indexed_at": datetime.now(UTC)}
        with self.engine.begin() as conn:
            conn.execute(
                update(uploads_table).where(uploads_table.c.source == source).values(**values)
            )


def _checked_suffix(name: str) -> str:
    suffix = Path(name or "").suffix.lower()
    if suffix not in supported_suffixes():
        raise UploadError(
            f"unsupported file type '{suffix or name or '(no name)'}' "
            f"(supported: {', '.join(sorted(supported_suffixes()))})"
        )
    return suffix


def _display_name(name: str) -> str:
    """The original file name as metadata: the last path part, without control characters."""
    base = Path((name or "").replace("\\", "/")).name
    cleaned = "".join(ch for ch in base if ch.isprintable())
    return cleaned[:300] or "(no name)"


def _iso(epoch: float | None) -> str:
    if not epoch:
        return ""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")
