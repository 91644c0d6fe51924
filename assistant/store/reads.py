"""Reading the store: nearest neighbours, whole collections in pages, chunks by id or source.

KnowledgeBase inherits these; they use only its two langchain Chroma stores (chunks and units).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from langchain_chroma import Chroma

from assistant.audience import visible, where_filter

READ_PAGE = 10_000  # records per get() when a whole collection is read (see read_all)


@dataclass(frozen=True)
class StoredChunk:
    """One stored chunk as the store holds it now: text, metadata and (when asked for) vector."""

    text: str
    metadata: dict
    vector: np.ndarray | None = None


class StoreReads:
    """The read side of KnowledgeBase."""

    store: Chroma
    unit_store: Chroma

    @property
    def collection(self):
        """Chroma's collection, for this package and tests (the methods below are the interface)."""
        return self.store._collection

    def nearest(
        self,
        vector: list[float],
        n: int,
        groups: frozenset[str],
        *,
        units: bool = False,
        total: int,
        readable: Callable[[list[str]], list[bool | None]] | None = None,
        vectors: dict[str, np.ndarray] | None = None,
        unreadable: int | None = None,
    ) -> list[tuple[str, float, dict]]:
        """The `n` chunks (or units) nearest to a query vector that `groups` may read, nearest
        first: (id, cosine, metadata); `total` is how many the collection holds.

        Chroma's own `where` filter makes a query about a hundred times slower at 10k chunks, so
        the search asks for more without it (2n, or n plus `unreadable`, the caller's count of
        records `groups` may not read, when that is fewer: fewer vectors to hand over) and keeps
        the readable ones; only when too few are readable does it ask again with the filter.

        `readable(ids)`: the caller's knowledge of who may read which record (True/False, None if
        unknown): then only distances are asked for and metadata is read for unknown hits only
        (the metadata returned for known ones is empty). Nothing unreadable is ever returned.

        `vectors`, if given, receives the stored vector of every record returned (by id), so the
        caller can score them against a second query vector without a second search.
        """
        collection = (self.unit_store if units else self.store)._collection
        n = min(n, total)
        if n < 1:
            return []

        def query(count: int, where: dict | None) -> list[tuple[str, float, dict]]:
            lean = readable is not None and where is None
            include: Any = ["distances"] if lean else ["distances", "metadatas"]
            if vectors is not None:
                include.append("embeddings")
            hits: Any = collection.query(
                query_embeddings=[vector],  # type: ignore[arg-type]
                n_results=count,
                where=where,
                include=include,
            )
            metas = [{}] * len(hits["ids"][0]) if lean else hits["metadatas"][0]
            if vectors is not None:
                vectors.update(zip(hits["ids"][0], np.asarray(hits["embeddings"][0]), strict=True))
            return [
                (found, 1.0 - distance, meta or {})
                for found, distance, meta in zip(
                    hits["ids"][0], hits["distances"][0], metas, strict=True
                )
            ]

        wide = min(2 * n if unreadable is None else n + min(n, unreadable), total)
        rows = query(wide, None)
        found = self._readable(rows, groups, readable, units)[:n]
        if len(found) < n and len(rows) == wide < total:
            found = query(n, where_filter(groups))
        return found

    def _readable(
        self,
        rows: list[tuple[str, float, dict]],
        groups: frozenset[str],
        readable: Callable[[list[str]], list[bool | None]] | None,
        units: bool,
    ) -> list[tuple[str, float, dict]]:
        """The rows `groups` may read: by the caller's knowledge, else by their metadata (read
        here for the rows the caller does not know)."""
        if readable is None:
            return [row for row in rows if visible(row[2], groups)]
        known = readable([row[0] for row in rows])
        unknown = [row[0] for row, k in zip(rows, known, strict=True) if k is None]
        metas = {i: c.metadata for i, c in self.chunks(unknown, units=units).items()}
        rows = [(i, cosine, metas.get(i, meta)) for i, cosine, meta in rows]
        return [
            row
            for row, k in zip(rows, known, strict=True)
            if (k if k is not None else row[0] in metas and visible(row[2], groups))
        ]

    def read_all(self, include: list[str], *, units: bool = False) -> dict:
        """Every stored chunk (or unit): its id and the fields in `include`, as one `get()` would
        return them, in pages of READ_PAGE (the embedded Chroma refuses the metadata of more than
        32,766 records in one call: SQLite's limit on query variables)."""
        out: dict = {"ids": [], **{name: [] for name in include}}
        for page in self.read_pages(include, units=units):
            for name, values in page.items():
                out[name] += values
        return out

    def read_pages(self, include: list[str], *, units: bool = False) -> Iterator[dict]:
        """read_all one page at a time, for a caller that keeps little of each record (so the
        whole collection is never in memory at once)."""
        collection = (self.unit_store if units else self.store)._collection
        seen: set[str] = set()
        offset = 0
        while True:
            got: Any = collection.get(
                include=include,  # type: ignore[arg-type]
                limit=READ_PAGE,
                offset=offset,
            )
            rows = [row for row, rid in enumerate(got["ids"]) if rid not in seen]
            seen.update(got["ids"])  # a write between two pages may move a record
            yield {name: [got[name][row] for row in rows] for name in ["ids", *include]}
            if len(got["ids"]) < READ_PAGE:
                return
            offset += READ_PAGE

    def stored_chunk(self, chunk_id: str) -> tuple[str, dict] | None:
        """One stored chunk's content and metadata (None if there is none by that id)."""
        found = self.chunks([chunk_id]).get(chunk_id)
        return (found.text, found.metadata) if found else None

    def metadatas(self, source: str | None = None) -> list[dict]:
        """The metadata of every stored chunk (of one source, if given)."""
        if source is None:
            got: Any = self.read_all(["metadatas"])
        else:
            got = self.collection.get(where={"source": source}, include=["metadatas"])
        return [meta for meta in got["metadatas"] if meta]

    def texts_of(self, source: str) -> list[str]:
        """The texts of one source's stored chunks."""
        got = self.collection.get(where={"source": source}, include=["documents"])
        return list(got["documents"] or [])

    def chunks(
        self, ids: list[str], *, vectors: bool = False, units: bool = False
    ) -> dict[str, StoredChunk]:
        """Stored chunks (or units) by id, as stored now: one deleted or replaced since (its id
        was the hash of its old text and metadata) is left out. Read in pages of READ_PAGE ids."""
        collection = (self.unit_store if units else self.store)._collection
        out: dict[str, StoredChunk] = {}
        include = ["documents", "metadatas", *(["embeddings"] if vectors else [])]
        for start in range(0, len(ids), READ_PAGE):
            got: Any = collection.get(
                ids=ids[start : start + READ_PAGE],
                include=include,  # type: ignore[arg-type]
            )
            for row, cid in enumerate(got["ids"]):
                vector = np.asarray(got["embeddings"][row], dtype=np.float32) if vectors else None
                out[cid] = StoredChunk(got["documents"][row], got["metadatas"][row] or {}, vector)
        return out

    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        """The stored embeddings of chunks, by id (ids no longer stored are left out)."""
        found = self.chunks(list(ids), vectors=True).items()
        return {cid: c.vector for cid, c in found if c.vector is not None}

    def unit_count(self) -> int:
        return self.unit_store._collection.count()

    def count(self) -> int:
        return self.collection.count()

    def stored_sources(self) -> set[str]:
        """Corpus-relative paths that have chunks in the store."""
        metadatas = self.read_all(["metadatas"])["metadatas"]
        return {m["source"] for m in metadatas if m and "source" in m}
