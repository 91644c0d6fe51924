"""The Chroma store and incremental ingestion through langchain's indexing API.

State lives in two places under the data dir: the Chroma collection (vectors, passages, metadata,
and a `corpus_version` marker in the collection metadata) and the record manager's SQLite database
(content hash of every stored chunk, grouped by source file). langchain's `index()` compares the
hashes, so unchanged files cost no embedding, a changed file's old chunks are replaced, and chunk
ids are derived from content (deterministic; a re-run upserts the same ids, never duplicates).
"""

from __future__ import annotations

import fcntl
import logging
import os
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
from langchain_core.embeddings import Embeddings
from langchain_core.indexing import index

from assistant.chunking import split_document
from assistant.config import Settings
from assistant.documents import DocumentError, discover, load_document

log = logging.getLogger(__name__)

VERSION_KEY = "corpus_version"


class IngestBusyError(RuntimeError):
    """Another ingest holds the lock on this data dir."""


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
    chunks_deleted: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


class KnowledgeBase:
    """The Chroma collection plus the record manager that makes ingestion incremental."""

    def __init__(self, settings: Settings, embeddings: Embeddings) -> None:
        self.settings = settings
        self.embeddings = embeddings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self._open()
        self.records = SQLRecordManager(
            namespace=f"chroma/{settings.collection_name}", db_url=settings.record_db_url
        )
        self.records.create_schema()

    def _open(self) -> None:
        self.client = chromadb.PersistentClient(
            path=str(self.settings.chroma_dir),
            settings=ChromaSettings(anonymized_telemetry=False),
        )
        # embedding_function=None inside langchain's Chroma: Chroma never loads its default
        # (downloading) embedding model; vectors always come from self.embeddings.
        self.store = Chroma(
            client=self.client,
            collection_name=self.settings.collection_name,
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
        """
        fresh = self.client.get_collection(self.settings.collection_name).metadata or {}
        if fresh.get(VERSION_KEY, "") == self._seen_version:
            return False
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

    def count(self) -> int:
        return self.collection.count()

    def stored_sources(self) -> set[str]:
        """Corpus-relative paths that have chunks in the store."""
        metadatas = self.collection.get(include=["metadatas"])["metadatas"] or []
        return {m["source"] for m in metadatas if m and "source" in m}

    @contextmanager
    def _ingest_lock(self) -> Iterator[None]:
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
        """
        started = time.perf_counter()
        report = IngestReport()
        if not corpus_dir.is_dir():
            raise FileNotFoundError(f"corpus folder not found: {corpus_dir}")
        with self._ingest_lock():
            paths = discover(corpus_dir)
            report.files_seen = len(paths)
            loaded = []
            for path in paths:
                source = path.relative_to(corpus_dir).as_posix()
                try:
                    doc = load_document(
                        path,
                        corpus_dir,
                        max_bytes=int(self.settings.max_file_mb * 1_000_000),
                        default_audience=self.settings.default_audience,
                    )
                    chunks = split_document(
                        doc, self.settings.chunk_size, self.settings.chunk_overlap
                    )
                except DocumentError as exc:
                    log.warning("skipped %s: %s", source, exc)
                    report.failed.append({"source": source, "reason": str(exc)})
                    continue
                loaded.append((source, chunks))
            if on_total:
                on_total(sum(len(chunks) for _, chunks in loaded))

            stored = self.stored_sources()
            changed = False
            for source, chunks in loaded:
                result = index(
                    chunks,
                    self.records,
                    self.store,
                    cleanup="incremental",
                    source_id_key="source",
                    key_encoder="sha256",
                )
                report.chunks_total += len(chunks)
                report.chunks_embedded += result["num_added"]
                report.chunks_deleted += result["num_deleted"]
                if result["num_added"] or result["num_deleted"]:
                    changed = True
                    (report.updated if source in stored else report.added).append(source)
                else:
                    report.skipped.append(source)
                if progress:
                    progress(len(chunks))

            present = {path.relative_to(corpus_dir).as_posix() for path in paths}
            for source in sorted(stored - present):
                report.chunks_deleted += self.delete_source(source)
                report.deleted.append(source)
                changed = True
            if changed:
                self._bump_version()
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def delete_source(self, source: str) -> int:
        """Remove every chunk of one source file from the store and the records."""
        ids = self.collection.get(where={"source": source}, include=[])["ids"]
        ids = sorted(set(ids) | set(self.records.list_keys(group_ids=[source])))
        if ids:
            self.store.delete(ids=ids)
            self.records.delete_keys(ids)
        return len(ids)
