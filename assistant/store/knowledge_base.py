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

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chromadb.api.shared_system_client import SharedSystemClient
from langchain_chroma import Chroma
from langchain_classic.indexes import SQLRecordManager
from langchain_classic.indexes._sql_record_manager import UpsertionRecord
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.indexing import index
from sqlalchemy import func, select

from assistant.config import Settings
from assistant.store.chroma import connect
from assistant.store.database import is_shared, make_engine
from assistant.store.failures import READ_ONLY, RECORDS_FILE, private_copy, writable
from assistant.store.headings import HeadingVectors, chunk_heading
from assistant.store.latent import LatentTermsTable, UnitStore, supports_latent
from assistant.store.locks import StoreLocks
from assistant.store.reads import READ_PAGE, StoredChunk, StoreReads

log = logging.getLogger(__name__)

VERSION_KEY = "corpus_version"
UNITS_SUFFIX = "__units"  # the units' collection: "<collection name>__units"
HEADINGS_SUFFIX = "__headings"  # the namespace of the headings' vectors (store/headings.py)
__all__ = ["READ_PAGE", "KnowledgeBase", "StoredChunk"]


class KnowledgeBase(StoreReads):
    """The Chroma collection plus the record manager that makes ingestion incremental."""

    def __init__(self, settings: Settings, embeddings: Embeddings) -> None:
        self.settings = settings
        self.embeddings = embeddings
        self._writer = threading.local()  # how deep this thread is inside writing()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # A Chroma server: vectors and the version marker live there, nothing in the data dir.
        self.server = bool(settings.chroma_url)
        # Chroma cannot even open a store it may not write, so a read-only one is copied.
        self.read_only = not self.server and not writable(settings)
        self._snapshot = private_copy(settings) if self.read_only else None
        store_dir = Path(self._snapshot.name) if self._snapshot else settings.data_dir
        self._chroma_dir = store_dir / settings.chroma_dir.name
        record_url = (
            f"sqlite:///{store_dir / RECORDS_FILE}"
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
        self.locks = StoreLocks(settings, self._engine, self.read_only)
        # The units' latent terms (store/latent.py), where the embedding backend has them and
        # retrieval uses them (ASSISTANT_LATENT_WEIGHT=0 computes none either).
        units_namespace = f"chroma/{settings.collection_name}{UNITS_SUFFIX}"
        self.latent = (
            LatentTermsTable(self._engine, units_namespace, embeddings)
            if supports_latent(embeddings) and settings.latent_weight > 0
            else None
        )
        with self.locks.creation():
            self._open()
            self.records = SQLRecordManager(
                namespace=f"chroma/{settings.collection_name}", engine=self._engine
            )
            self.records.create_schema()
            if self.latent is not None:
                self.latent.create_schema()
            # The units' records: the same table, a namespace of their own.
            self.unit_records = SQLRecordManager(namespace=units_namespace, engine=self._engine)
            self.headings = HeadingVectors(
                self._engine, f"chroma/{settings.collection_name}{HEADINGS_SUFFIX}", embeddings
            )
            self.headings.create_schema()

    def _open(self) -> None:
        self.client = connect(self.settings, self._chroma_dir)
        self._open_collection()

    def _open_collection(self) -> None:
        self.store, self.unit_store = self._collections(self.client)
        self._seen_version = self.version()

    def _collections(self, client) -> tuple[Chroma, Chroma]:
        """The chunks' collection and their units' (sentences, bullets, table rows), searched
        next to the chunks. embedding_function=None inside langchain's Chroma: Chroma never
        loads its default (downloading) model; vectors always come from self.embeddings."""
        breadth = self.settings.hnsw_ef_search
        shared: dict[str, Any] = {
            "client": client,
            "embedding_function": self.embeddings,
            "collection_configuration": {"hnsw": {"space": "cosine", "ef_search": breadth}},
        }
        chunks = Chroma(collection_name=self.settings.collection_name, **shared)
        units = UnitStore(
            collection_name=self.settings.collection_name + UNITS_SUFFIX,
            latent=self.latent,
            **shared,
        )
        for store in (chunks, units):
            # A collection made before (or with another setting) keeps its own until changed.
            hnsw = (store._collection.configuration or {}).get("hnsw") or {}
            if hnsw.get("ef_search") != breadth:
                store._collection.modify(configuration={"hnsw": {"ef_search": breadth}})
        return chunks, units

    def version(self) -> str:
        """The corpus version marker; changes whenever an ingest changed the store."""
        return (self.collection.metadata or {}).get(VERSION_KEY, "")

    def stored_version(self) -> str:
        """The version marker as stored now, also when another process moved it (one read of
        the collection's metadata; nothing is reopened)."""
        fresh = self.client.get_collection(self.settings.collection_name).metadata or {}
        return fresh.get(VERSION_KEY, "")

    def refresh_if_changed(self) -> bool:
        """Reopen the store when another process changed it; True if it did.

        An embedded Chroma client keeps its vector index in memory and does not see vectors
        another process added (the version marker is read from disk). A Chroma server serves
        every writer's vectors; only the collection's metadata held here is fetched again."""
        if self.stored_version() == self._seen_version:
            return False
        if self.server:
            self._open_collection()
            return True
        # Chroma caches one System per path; drop only ours so the next client loads from disk
        # (clear_system_cache() would also break every other client in this process).
        SharedSystemClient._identifier_to_system.pop(self.client._identifier, None)
        SharedSystemClient._identifier_to_refcount.pop(self.client._identifier, None)
        client = connect(self.settings, self._chroma_dir)
        collections = self._collections(client)
        # A new client loads its vector indexes on its first query: done here, so questions
        # asked meanwhile (on other threads) use the old client until the new one is ready.
        for store in collections:
            one: Any = store._collection.get(limit=1, include=["embeddings"])
            if one["ids"]:
                store._collection.query(query_embeddings=[one["embeddings"][0]], n_results=1)
        self.client, (self.store, self.unit_store) = client, collections
        self._seen_version = self.version()
        return True

    def bump_version(self) -> None:
        metadata = dict(self.collection.metadata or {})
        metadata[VERSION_KEY] = f"{time.time():.6f}-{uuid.uuid4().hex[:8]}"
        self.collection.modify(metadata=metadata)
        self._seen_version = metadata[VERSION_KEY]

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
        with self.locks.ingest():
            self._writer.depth = 1
            try:
                yield
            finally:
                self._writer.depth = 0

    def reconcile(self) -> tuple[int, int]:
        """Make the records, the collections and the units' latent terms agree again; returns how
        many entries it dropped and how many units it gave their latent terms.

        index() writes the collection first and the records second, and deletes in that order too,
        so a process killed in between leaves chunks the records do not know (never cleaned up when
        their file changes) or records of chunks the collection lost (their file would count as
        unchanged, its chunks stay missing). Both are dropped; the ingest that follows re-adds
        whatever the corpus still holds. Then the latent terms are mended for the units left.
        """
        dropped, left = 0, {}
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
            left[what] = stored - set(unrecorded)
        return dropped, self.mend_latent_terms(left["units"])[0]

    def mend_latent_terms(self, units: set[str] | None = None) -> tuple[int, int]:
        """Latent terms for stored units that lack them (a store from before they existed, an
        interrupted write), none for units gone; (added, dropped). `units`: the stored units' ids
        where the caller has just read them. Part of every ingest (reconcile)."""
        if self.latent is None:
            return 0, 0
        if units is None:
            units = set(self.unit_store._collection.get(include=[])["ids"])
        added, dropped = self.latent.mend(units, lambda ids: self.chunks(ids, units=True))
        if added or dropped:
            log.info("latent terms: %d units given theirs, %d dropped", added, dropped)
        return added, dropped

    def latent_terms(self, keys: list[str]) -> dict:
        """The latent terms of these chunks' units, by chunk key ({} without a sparse head)."""
        return self.latent.of_chunks(keys) if self.latent is not None else {}

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

    def store_source(self, chunks: list[Document], units: list[Document]) -> dict:
        """langchain's indexing API: add new chunks, replace the source's old ones (by hash);
        then the same for the chunks' units. The counts are the chunks', and the units' under
        units_added / units_deleted (a new unit splitter changes units alone). The caller holds
        writing() and moves the version marker.

        "scoped_full" cleans up once all of the source is written: "incremental" cleans up
        after every write batch (100 documents), so it dropped the rest of a longer document
        after the first batch and embedded it again in the next, on every ingest.

        The chunks' headings (context lines) not stored yet are embedded first (headings_added):
        a store from before them gets them at its next ingest."""
        headings = self.headings.ensure([chunk_heading(c.page_content, c.metadata) for c in chunks])
        result = index(
            chunks,
            self.records,
            self.store,
            cleanup="scoped_full",
            source_id_key="source",
            key_encoder="sha256",
        )
        unit_result = index(
            units,
            self.unit_records,
            self.unit_store,
            cleanup="scoped_full",
            source_id_key="source",
            key_encoder="sha256",
        )
        return {
            **result,
            "units_added": unit_result["num_added"],
            "units_deleted": unit_result["num_deleted"],
            "headings_added": headings,
        }

    def replace_source(self, source: str, chunks: list[Document], units: list[Document]) -> dict:
        """Store one document's chunks in place of what was stored for it (the admin's upload and
        re-index); the new version is searchable at once (the version marker moves)."""
        if not chunks:
            raise ValueError(f"no chunks for {source}")
        if any(c.metadata.get("source") != source for c in chunks):
            raise ValueError(f"every chunk must belong to {source}")
        if self.read_only:
            raise PermissionError(READ_ONLY.format(self.settings.data_dir))
        with self.writing():
            result = self.store_source(chunks, units)
            if any(result[k] for k in CHANGES):
                self.bump_version()
        return result

    def remove_source(self, source: str) -> int:
        """Delete one document from the store at once; returns how many chunks left."""
        if self.read_only:
            raise PermissionError(READ_ONLY.format(self.settings.data_dir))
        with self.writing():
            removed = self.delete_source(source)
            if removed:
                self.bump_version()
        return removed

    def last_indexed(self) -> dict[str, float]:
        """When each stored document was last written (epoch seconds, from the ingest records)."""
        with self.records._make_session() as session:
            rows: Any = session.execute(
                select(UpsertionRecord.group_id, func.max(UpsertionRecord.updated_at))
                .where(UpsertionRecord.namespace == self.records.namespace)
                .group_by(UpsertionRecord.group_id)
            ).all()
        return {group: float(updated) for group, updated in rows if group}


# What store_source reports that readers must see (the version marker moves).
CHANGES = ("num_added", "num_deleted", "units_added", "units_deleted", "headings_added")
UPLOAD_PREFIX = "upload:"


def is_upload(source: str) -> bool:
    """Whether a stored source is a document uploaded by an admin (not a file of corpus/)."""
    return source.startswith(UPLOAD_PREFIX)
