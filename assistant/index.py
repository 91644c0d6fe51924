"""The Chroma store and incremental ingestion through langchain's indexing API.

State lives in two places: the Chroma collection (vectors, passages, metadata, and a
`corpus_version` marker in the collection metadata), embedded in the data dir or on a Chroma server
(settings.chroma_url), and the record manager's SQL database (content hash of every stored chunk,
grouped by source file), SQLite in the data dir or settings.database_url. langchain's `index()`
compares the hashes, so unchanged files cost no embedding, a changed file's old chunks are replaced,
and chunk ids are derived from content (deterministic; a re-run upserts the same ids, never
duplicates).

A process killed mid-ingest can leave the two out of step; the next ingest reconciles them first.
A store this process may not write is opened as a private read-only copy: questions are answered,
ingests are refused with a clear reason.

Writers exclude each other with two locks ("open" while the tables are created, "ingest" while the
store is written). They follow the records: with PostgreSQL they are advisory locks in it, shared
by every machine that writes the store; with SQLite, file locks in the data dir.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import chromadb
from chromadb.api.shared_system_client import SharedSystemClient
from chromadb.config import Settings as ChromaSettings
from langchain_chroma import Chroma
from langchain_classic.indexes import SQLRecordManager
from langchain_classic.indexes._sql_record_manager import UpsertionRecord
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.indexing import index
from sqlalchemy import func, select

from assistant.audience import visible, where_filter
from assistant.chunking import split_document, unit_documents
from assistant.config import Settings
from assistant.documents import (
    DocumentError,
    SourceDocument,
    discover,
    load_document,
    source_name,
)
from assistant.storage import advisory_lock, is_shared, make_engine

log = logging.getLogger(__name__)

VERSION_KEY = "corpus_version"


class IngestBusyError(RuntimeError):
    """Another ingest holds the lock on this data dir."""


class StoreUnavailableError(RuntimeError):
    """The Chroma server cannot be reached or refuses this client."""


@dataclass
class FileResult:
    """What ingestion did with one file."""

    source: str
    status: str  # added | updated | unchanged | deleted | failed
    chunks: int = 0
    reason: str = ""


@dataclass
class IngestReport:
    """Summary of one ingest run (printed as text or as one JSON object)."""

    files_seen: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    chunks_total: int = 0
    chunks_embedded: int = 0
    units_embedded: int = 0  # sentences, bullets and rows of the chunks embedded now
    chunks_deleted: int = 0
    seconds: float = 0.0
    # Why the run stopped before the end (the store could not be written); files it did not reach
    # keep what was stored for them.
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.failed and not self.error

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


class KnowledgeBase:
    """The Chroma collection plus the record manager that makes ingestion incremental."""

    def __init__(self, settings: Settings, embeddings: Embeddings) -> None:
        self.settings = settings
        self.embeddings = embeddings
        self._writer = threading.local()  # how deep this thread is inside writing()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # A Chroma server: vectors and the version marker live there, nothing in the data dir.
        self.server = bool(settings.chroma_url)
        # Chroma cannot even open a store it may not write, so a read-only one is copied.
        self.read_only = not self.server and not _writable(settings)
        self._snapshot = _snapshot(settings) if self.read_only else None
        store_dir = Path(self._snapshot.name) if self._snapshot else settings.data_dir
        self._chroma_dir = store_dir / settings.chroma_dir.name
        record_url = (
            f"sqlite:///{store_dir / _RECORDS_FILE}"
            if self._snapshot and not settings.database_url
            else settings.record_db_url
        )
        # The records' SQLite file keeps its default journal: a read-only store copies it whole.
        self._engine = make_engine(record_url, wal=False)
        if self.server and not is_shared(self._engine):
            log.warning(
                "Chroma server with ingest records in local SQLite: ingest from this machine only, "
                "or set ASSISTANT_DATABASE_URL to a PostgreSQL database every machine shares"
            )
        with self._creation_lock():
            self._open()
            self.records = SQLRecordManager(
                namespace=f"chroma/{settings.collection_name}", engine=self._engine
            )
            self.records.create_schema()
            # The units' records: the same table, a namespace of their own.
            self.unit_records = SQLRecordManager(
                namespace=f"chroma/{settings.collection_name}{UNITS_SUFFIX}", engine=self._engine
            )

    def _shared_lock(self, name: str, wait: bool):
        """PostgreSQL advisory lock `name` for this collection (every machine sees it)."""
        return advisory_lock(
            self._engine, f"assistant/{name}/{self.settings.collection_name}", wait=wait
        )

    @contextmanager
    def _creation_lock(self) -> Iterator[None]:
        """Hold off other processes while the store's tables are created: two ingests started
        together on a fresh data dir would otherwise both create them, and one fail."""
        if self.read_only:
            yield
            return
        if is_shared(self._engine):
            with self._shared_lock("open", wait=True):
                yield
            return
        with open(self.settings.data_dir / "open.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _open(self) -> None:
        self.client = self._connect()
        self._open_collection()

    def _connect(self):
        """A client of the Chroma server (settings.chroma_url) or of the embedded store."""
        if not self.server:
            return chromadb.PersistentClient(
                path=str(self._chroma_dir), settings=ChromaSettings(anonymized_telemetry=False)
            )
        token = self.settings.chroma_token.get_secret_value()
        auth = (
            {
                # Sent as `Authorization: Bearer <token>` on every request.
                "chroma_client_auth_provider": "chromadb.auth.token_authn.TokenAuthClientProvider",
                "chroma_client_auth_credentials": token,
            }
            if token
            else {}
        )
        try:
            return chromadb.HttpClient(
                host=self.settings.chroma_url,
                settings=ChromaSettings(anonymized_telemetry=False, **auth),
            )
        except Exception as exc:  # Chroma reports a refusal or an unreachable server as it likes
            raise StoreUnavailableError(
                f"Chroma server {self.settings.chroma_url} not usable: {exc} (check "
                "ASSISTANT_CHROMA_URL and ASSISTANT_CHROMA_TOKEN)"
            ) from exc

    def _open_collection(self) -> None:
        # embedding_function=None inside langchain's Chroma: Chroma never loads its default
        # (downloading) embedding model; vectors always come from self.embeddings.
        self.store = Chroma(
            client=self.client,
            collection_name=self.settings.collection_name,
            embedding_function=self.embeddings,
            collection_configuration={"hnsw": {"space": "cosine"}},
        )
        # Every chunk's units (sentences, bullets, table rows), searched next to the chunks.
        self.unit_store = Chroma(
            client=self.client,
            collection_name=self.settings.collection_name + UNITS_SUFFIX,
            embedding_function=self.embeddings,
            collection_configuration={"hnsw": {"space": "cosine"}},
        )
        self._seen_version = self.version()

    @property
    def collection(self):
        return self.store._collection

    def version(self) -> str:
        """The corpus version marker; changes whenever an ingest changed the store."""
        return (self.collection.metadata or {}).get(VERSION_KEY, "")

    def refresh_if_changed(self) -> bool:
        """Reopen the store when another process changed it; True if it did.

        An embedded Chroma client keeps its vector index in memory and does not see vectors
        another process added; the collection metadata (the version marker) is read from disk.
        A Chroma server serves every writer's vectors already; only the collection's metadata
        this process holds is stale, so the collection is fetched again (callers such as the
        BM25 index compare version() to know what to rebuild).
        """
        fresh = self.client.get_collection(self.settings.collection_name).metadata or {}
        if fresh.get(VERSION_KEY, "") == self._seen_version:
            return False
        if self.server:
            self._open_collection()
            return True
        # Chroma caches one System per path; drop only ours so the next client loads from disk
        # (clear_system_cache() would also break every other client in this process).
        SharedSystemClient._identifier_to_system.pop(self.client._identifier, None)
        SharedSystemClient._identifier_to_refcount.pop(self.client._identifier, None)
        self._open()
        return True

    def _bump_version(self) -> None:
        metadata = dict(self.collection.metadata or {})
        metadata[VERSION_KEY] = f"{time.time():.6f}-{uuid.uuid4().hex[:8]}"
        self.collection.modify(metadata=metadata)
        self._seen_version = metadata[VERSION_KEY]

    def nearest(
        self,
        vector: list[float],
        n: int,
        groups: frozenset[str],
        *,
        units: bool = False,
        total: int,
    ) -> list[tuple[str, float, dict]]:
        """The `n` chunks (or units) nearest to a query vector that `groups` may read, nearest
        first: (id, cosine, metadata); `total` is how many the collection holds.

        Chroma's own `where` filter makes a query about a hundred times slower at 10k chunks
        (it collects the admitted ids first), so the search asks for twice as many without it and
        keeps the readable ones; only when too few of those are readable does it ask again with
        the filter. Either way nothing a reader may not see is returned.
        """
        collection = (self.unit_store if units else self.store)._collection
        n = min(n, total)
        if n < 1:
            return []

        def query(count: int, where: dict | None) -> list[tuple[str, float, dict]]:
            hits = collection.query(
                query_embeddings=[vector],
                n_results=count,
                where=where,
                include=["distances", "metadatas"],
            )
            return [
                (found, 1.0 - distance, meta or {})
                for found, distance, meta in zip(
                    hits["ids"][0], hits["distances"][0], hits["metadatas"][0], strict=True
                )
            ]

        wide = min(2 * n, total)
        rows = query(wide, None)
        readable = [row for row in rows if visible(row[2], groups)][:n]
        if len(readable) < n and len(rows) == wide < total:
            readable = query(n, where_filter(groups))
        return readable

    def stored_chunk(self, chunk_id: str) -> tuple[str, dict] | None:
        """One stored chunk's content and metadata (None if there is none by that id)."""
        got = self.collection.get(ids=[chunk_id], include=["documents", "metadatas"])
        if not got["ids"]:
            return None
        return got["documents"][0], got["metadatas"][0] or {}

    def unit_count(self) -> int:
        return self.unit_store._collection.count()

    def count(self) -> int:
        return self.collection.count()

    def stored_sources(self) -> set[str]:
        """Corpus-relative paths that have chunks in the store."""
        metadatas = self.collection.get(include=["metadatas"])["metadatas"] or []
        return {m["source"] for m in metadatas if m and "source" in m}

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the ingest lock for a block of writes that belong together (an upload: its record,
        file and chunks); IngestBusyError when another writer holds it. Re-entrant within a
        thread, so the store's own writes inside the block do not lock themselves out."""
        depth = getattr(self._writer, "depth", 0)
        if depth:
            self._writer.depth = depth + 1
            try:
                yield
            finally:
                self._writer.depth = depth
            return
        with self._ingest_lock():
            self._writer.depth = 1
            try:
                yield
            finally:
                self._writer.depth = 0

    @contextmanager
    def _ingest_lock(self) -> Iterator[None]:
        if is_shared(self._engine):
            with self._shared_lock("ingest", wait=False) as got:
                if not got:
                    raise IngestBusyError(
                        f"another ingest is running on collection {self.settings.collection_name}"
                        f" of {self.settings.chroma_url or self.settings.data_dir}; try again "
                        "when it ends"
                    )
                yield
            return
        path = self.settings.data_dir / "ingest.lock"
        with open(path, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise IngestBusyError(
                    f"another ingest is running on {self.settings.data_dir}; try again when it ends"
                ) from exc
            handle.write(str(os.getpid()))
            handle.flush()
            yield

    def ingest(
        self,
        corpus_dir: Path,
        progress: Callable[[int], None] | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> IngestReport:
        """Bring the store in line with corpus_dir: add new, replace changed, delete removed files.

        A file that fails to load is reported and skipped; whatever was stored for it before stays.
        A store that cannot be written (read-only, disk full) ends the run with `report.error`;
        nothing stored before is lost, since new chunks are added before old ones are deleted.
        """
        started = time.perf_counter()
        report = IngestReport()
        if not corpus_dir.is_dir():
            raise FileNotFoundError(f"corpus folder not found: {corpus_dir}")
        if self.read_only:
            report.error = _READ_ONLY.format(self.settings.data_dir)
            return report
        try:
            with self.writing():
                loaded, present = self._load_corpus(corpus_dir, report)
                if on_total:
                    on_total(sum(len(chunks) for _, chunks in loaded))
                self._write(loaded, present, report, progress)
        except IngestBusyError:
            raise
        except Exception as exc:
            report.error = _store_failure(exc, self.settings.data_dir)
            if not report.error:
                raise
            log.error("ingest stopped: %s", report.error)
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def _load_corpus(
        self, corpus_dir: Path, report: IngestReport
    ) -> tuple[list[tuple[str, list[Document]]], set[str]]:
        """Chunks of every loadable file, and the source names of all files found (a file that
        fails to load is still present: its stored chunks stay)."""
        paths = discover(corpus_dir)
        report.files_seen = len(paths)
        loaded: list[tuple[str, list[Document]]] = []
        present: set[str] = set()
        for path in paths:
            source = source_name(path, corpus_dir)
            try:
                if source in present:
                    raise DocumentError(
                        "another file has the same name once Unicode is normalised (NFC); "
                        "rename one of them"
                    )
                present.add(source)
                chunks = self.chunk(self.read(path, corpus_dir))
            except DocumentError as exc:
                log.warning("skipped %s: %s", source, exc)
                report.failed.append({"source": source, "reason": str(exc)})
                continue
            loaded.append((source, chunks))
        return loaded, present

    def read(self, path: Path, root: Path) -> SourceDocument:
        """One file under root, loaded with this store's size limit and default audience."""
        return load_document(
            path,
            root,
            max_bytes=int(self.settings.max_file_mb * 1_000_000),
            default_audience=self.settings.default_audience,
        )

    def chunk(self, doc: SourceDocument) -> list[Document]:
        """A loaded document's chunks at this store's chunk size."""
        return split_document(doc, self.settings.chunk_size, self.settings.chunk_overlap)

    def _write(
        self,
        loaded: list[tuple[str, list[Document]]],
        present: set[str],
        report: IngestReport,
        progress: Callable[[int], None] | None,
    ) -> None:
        """Store the loaded files and drop removed ones; bump the version if anything changed,
        even when a write fails halfway (readers must see what did change)."""
        changed = False
        try:
            changed = self._reconcile() > 0
            stored = self.stored_sources()
            for source, chunks in loaded:
                result = self._index(chunks)
                report.chunks_total += len(chunks)
                report.chunks_embedded += result["num_added"]
                report.units_embedded += result["units_added"]
                report.chunks_deleted += result["num_deleted"]
                if result["num_added"] or result["num_deleted"]:
                    changed = True
                    (report.updated if source in stored else report.added).append(source)
                else:
                    report.skipped.append(source)
                if progress:
                    progress(len(chunks))
            # Uploaded documents are not files of the corpus folder: only the admin deletes them.
            for source in sorted(s for s in stored - present if not is_upload(s)):
                report.chunks_deleted += self.delete_source(source)
                report.deleted.append(source)
                changed = True
        finally:
            if changed:
                self._bump_version()

    def _reconcile(self) -> int:
        """Make the records and the collection agree again; returns how many entries it dropped.

        index() writes the collection first and the records second, and deletes in that order too,
        so a process killed in between leaves chunks the records do not know (never cleaned up when
        their file changes) or records of chunks the collection lost (their file would count as
        unchanged, its chunks stay missing). Both are dropped; the ingest that follows re-adds
        whatever the corpus still holds.
        """
        dropped = 0
        for store, records, what in (
            (self.store, self.records, "chunks"),
            (self.unit_store, self.unit_records, "units"),
        ):
            stored = set(store._collection.get(include=[])["ids"])
            recorded = set(records.list_keys())
            unrecorded = sorted(stored - recorded)
            lost = sorted(recorded - stored)
            if unrecorded:
                store.delete(ids=unrecorded)
            if lost:
                records.delete_keys(lost)
            if unrecorded or lost:
                log.warning(
                    "repaired an interrupted ingest: dropped %d unrecorded %s, %d records of "
                    "missing %s",
                    len(unrecorded),
                    what,
                    len(lost),
                    what,
                )
            dropped += len(unrecorded) + len(lost)
        return dropped

    def delete_source(self, source: str) -> int:
        """Remove every chunk (and unit) of one source file from the store and the records;
        returns how many chunks."""
        removed = 0
        for store, records in ((self.store, self.records), (self.unit_store, self.unit_records)):
            ids = store._collection.get(where={"source": source}, include=[])["ids"]
            ids = sorted(set(ids) | set(records.list_keys(group_ids=[source])))
            if ids:
                store.delete(ids=ids)
                records.delete_keys(ids)
            removed = removed or len(ids)
        return removed

    def _index(self, chunks: list[Document]) -> dict:
        """langchain's indexing API: add new chunks, replace the source's old ones (by hash);
        then the same for the chunks' units. The counts are the chunks'."""
        result = index(
            chunks,
            self.records,
            self.store,
            cleanup="incremental",
            source_id_key="source",
            key_encoder="sha256",
        )
        units = index(
            unit_documents(chunks),
            self.unit_records,
            self.unit_store,
            cleanup="incremental",
            source_id_key="source",
            key_encoder="sha256",
        )
        return {**result, "units_added": units["num_added"]}

    def replace_source(self, source: str, chunks: list[Document]) -> dict:
        """Store one document's chunks in place of what was stored for it (the admin's upload and
        re-index); the new version is searchable at once (the version marker moves)."""
        if not chunks:
            raise ValueError(f"no chunks for {source}")
        if any(c.metadata.get("source") != source for c in chunks):
            raise ValueError(f"every chunk must belong to {source}")
        if self.read_only:
            raise PermissionError(_READ_ONLY.format(self.settings.data_dir))
        with self.writing():
            result = self._index(chunks)
            if result["num_added"] or result["num_deleted"]:
                self._bump_version()
        return result

    def remove_source(self, source: str) -> int:
        """Delete one document from the store at once; returns how many chunks left."""
        if self.read_only:
            raise PermissionError(_READ_ONLY.format(self.settings.data_dir))
        with self.writing():
            removed = self.delete_source(source)
            if removed:
                self._bump_version()
        return removed

    def last_indexed(self) -> dict[str, float]:
        """When each stored document was last written (epoch seconds, from the ingest records)."""
        with self.records._make_session() as session:
            rows = session.execute(
                select(UpsertionRecord.group_id, func.max(UpsertionRecord.updated_at))
                .where(UpsertionRecord.namespace == self.records.namespace)
                .group_by(UpsertionRecord.group_id)
            ).all()
        return {group: float(updated) for group, updated in rows if group}


UPLOAD_PREFIX = "upload:"
UNITS_SUFFIX = "__units"  # the units' collection: "<collection name>__units"


def is_upload(source: str) -> bool:
    """Whether a stored source is a document uploaded by an admin (not a file of corpus/)."""
    return source.startswith(UPLOAD_PREFIX)


_RECORDS_FILE = "records.sqlite"
_READ_ONLY = "store is read-only: {}; make it writable for this user to ingest"


def _writable(settings: Settings) -> bool:
    """Whether this process may write every part of the store that exists already."""
    chroma = settings.chroma_dir
    parts = [
        settings.data_dir,
        settings.data_dir / _RECORDS_FILE,
        settings.data_dir / "ingest.lock",
    ]
    if chroma.exists():
        parts += [chroma, *chroma.rglob("*")]
    return all(os.access(part, os.W_OK) for part in parts if part.exists())


def _snapshot(settings: Settings) -> tempfile.TemporaryDirectory:
    """A private, writable copy of a read-only store, removed when the process ends."""
    log.warning("store %s is read-only: answering from a copy, ingest disabled", settings.data_dir)
    snapshot = tempfile.TemporaryDirectory(prefix="assistant-store-")
    target = Path(snapshot.name)
    if settings.chroma_dir.exists():
        copy = target / settings.chroma_dir.name
        shutil.copytree(settings.chroma_dir, copy, copy_function=shutil.copyfile)
        for folder in [copy, *(p for p in copy.rglob("*") if p.is_dir())]:
            folder.chmod(0o700)  # copytree copied the read-only mode of the folders
    if (settings.data_dir / _RECORDS_FILE).exists():
        shutil.copyfile(settings.data_dir / _RECORDS_FILE, target / _RECORDS_FILE)
    return snapshot


def _store_failure(exc: BaseException, data_dir: Path) -> str:
    """A clear reason if exc, or an error behind it, means the store cannot be written; else "".

    Chroma and SQLAlchemy wrap the operating system's error, often only as message text.
    """
    cause: BaseException | None = exc
    while cause is not None:
        text = str(cause).lower()
        code = cause.errno if isinstance(cause, OSError) else None
        if code in (errno.ENOSPC, errno.EDQUOT) or "disk is full" in text:
            return f"no space left on device while writing the store in {data_dir}"
        if code == errno.EROFS or "readonly database" in text or _denied_in(cause, data_dir):
            return _READ_ONLY.format(data_dir)
        cause = cause.__cause__ or cause.__context__
    return ""


def _denied_in(exc: BaseException, data_dir: Path) -> bool:
    """Whether exc is a permission error on a file of the store (not, say, of the corpus)."""
    if not isinstance(exc, PermissionError) or exc.filename is None:
        return False
    return Path(os.fsdecode(exc.filename)).absolute().is_relative_to(data_dir.absolute())
