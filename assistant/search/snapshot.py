"""What retrieval keeps per corpus version, and how it follows the store's version marker.

Per version: a BM25 index over every chunk, and per chunk only what a query needs before it
knows its candidates (id, source, unit key, audience flags, stems). The candidates' texts,
metadata and vectors are read from the store per query (KnowledgeBase.chunks), so the process
does not hold the corpus twice, and a chunk deleted or replaced after the index was built is
never ranked: chunk ids are hashes of text and metadata, and the store no longer has the old one.

A new version is indexed in the background once the index is large (BACKGROUND_FROM chunks):
the previous index answers meanwhile, and chunks Chroma finds that it does not know are ranked
by their cosine alone until the new one is in place. The store's marker is read at most once per
CHECK_S; this process's own writes are seen at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import sys
import threading
import time
from typing import NamedTuple

import bm25s
import numpy as np

from assistant.audience import PREFIX
from assistant.search.lexical import stems
from assistant.search.validity import Versions
from assistant.store.headings import chunk_heading, heading_key
from assistant.store.knowledge_base import KnowledgeBase

log = logging.getLogger(__name__)

CHECK_S = 0.5  # how stale another process's version marker may be seen
BACKGROUND_FROM = 5_000  # chunks; below, a version is indexed before the question (< ~0.5 s)
BM25_PARAMETERS = (1.2, 0.5)  # k1, b: the settings' defaults (bm25_k1, bm25_b)
RETRY_S = 30.0  # after a failed background build, the previous index answers this long


class Row(NamedTuple):
    """What the index keeps of one chunk."""

    id: str
    source: str
    language: str  # "" when the document declares none
    audience: tuple[str, ...]  # the groups flagged on it
    key: str  # the chunk key its units name
    section: str
    stems: str  # its BM25 tokens joined by spaces (stems hold none)
    heading: str  # the key of its heading's vector (store/headings.py: chunk_heading)


class CorpusIndex:
    """One corpus version: BM25 over every chunk; per chunk a Row; per source one metadata
    record (versions); every unit's chunk.

    Built from the previous version's index: a chunk id the previous version held has the same
    text and metadata (ids are content hashes), so only new chunks are read and stemmed, and
    only new units' metadata is read (stemming and reading every chunk and unit again was most
    of a version change's cost). Records are read a page at a time and only the Row is kept."""

    def __init__(
        self,
        rows: list[Row],
        source_meta: dict[str, dict],
        version: str = "",
        units: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        vectors: np.ndarray | None = None,
        bm25: tuple[float, float] = BM25_PARAMETERS,
        headings: tuple[dict[str, int], np.ndarray] | None = None,
    ) -> None:
        """`units`: the hash of each unit id, its chunk's position here (-1: none) and its
        position in the chunk, sorted by hash; `vectors`: each chunk's, of length 1; `bm25`:
        BM25's k1 and b; `headings`: the stored heading vectors (HeadingVectors.read)."""
        self.version = version
        # Every chunk's vector, for the cosine of a candidate only the keyword search or a unit
        # found: reading the candidates' vectors from Chroma per question cost 12 ms at 10k
        # chunks and 25 ms at 50k (and grew with the store); held here, 1.5 kB per chunk.
        self.vectors = vectors if vectors is not None else np.zeros((len(rows), 0), np.float32)
        self.rows = rows
        self.ids = [row.id for row in rows]
        self.stems = [row.stems for row in rows]
        self.source_meta = source_meta
        self.position = {chunk_id: i for i, chunk_id in enumerate(self.ids)}
        # Units name their chunk by its key; chunks stored before units existed have none.
        self.key_position = {row.key: i for i, row in enumerate(rows) if row.key}
        by_source: dict[str, list[int]] = {}
        flags: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            by_source.setdefault(row.source, []).append(i)
            for group in row.audience:
                flags.setdefault(group, []).append(i)
        self.by_source = {s: np.array(p, dtype=np.int64) for s, p in by_source.items()}
        self._flags = {g: np.array(p, dtype=np.int64) for g, p in flags.items()}
        self._masks: dict[frozenset[str], np.ndarray] = {}
        self._unreadable: dict[frozenset[str], int] = {}
        self._frequencies: dict[tuple[str, frozenset[str]], int] = {}
        self.versions = Versions(list(source_meta.values()))
        empty = np.zeros(0, dtype=np.int64)
        hashes, parents, positions = units or (empty, empty, empty)
        self.unit_hashes: np.ndarray = hashes
        self.unit_parents: np.ndarray = parents
        self.unit_positions: np.ndarray = positions
        self.unit_count = len(self.unit_hashes)
        # Each chunk's heading vector (a row of heading_vectors, -1: none stored), float16.
        keys, matrix = headings or ({}, np.zeros((0, 0), dtype=np.float16))
        self.heading_vectors = matrix
        self.heading_of = np.array([keys.get(row.heading, -1) for row in rows], dtype=np.int64)
        self.bm25 = bm25s.BM25(k1=bm25[0], b=bm25[1])
        if self.ids:
            self.bm25.index([s.split(" ") if s else [] for s in self.stems], show_progress=False)

    @classmethod
    def read(
        cls,
        kb: KnowledgeBase,
        previous: CorpusIndex | None = None,
        bm25: tuple[float, float] = BM25_PARAMETERS,
    ) -> CorpusIndex:
        """The index of the store's current version, reading what `previous` does not know."""
        version = kb.version()
        rows: list[Row] = []
        source_meta: dict[str, dict] = {}
        audiences: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple per distinct one
        vectors: list[np.ndarray] = []

        def add(cid: str, text: str, meta: dict, vector: object) -> None:
            source = sys.intern(str(meta.get("source", "")))
            audience = tuple(
                sorted(k[len(PREFIX) :] for k, v in meta.items() if k.startswith(PREFIX) and v)
            )
            section = sys.intern(str(meta.get("section", "")))
            # Section headings count twice (a field boost): they say what a passage is
            # about, where the title on every chunk of a document does not tell them apart.
            tokens = " ".join(stems(text) + stems(section))
            language = sys.intern(str(meta.get("language") or ""))
            key = str(meta.get("chunk_key") or "")
            audience = audiences.setdefault(audience, audience)
            heading = sys.intern(heading_key(chunk_heading(text, meta)))  # shared per section
            rows.append(Row(cid, source, language, audience, key, section, tokens, heading))
            vector = np.asarray(vector, dtype=np.float32)
            vectors.append(vector / (np.linalg.norm(vector) + 1e-12))
            if source not in source_meta:
                source_meta[source] = _version_facts(meta)

        if previous is None:
            for page in kb.read_pages(["documents", "metadatas", "embeddings"]):
                for cid, text, meta, vector in zip(*page.values(), strict=True):
                    add(cid, text, meta or {}, vector)
                _release_freed_memory()  # each page's records, not all of them at the peak
        else:
            ids = kb.read_all([])["ids"]
            new = [cid for cid in ids if cid not in previous.position]
            for cid, chunk in kb.chunks(new, vectors=True).items():
                add(cid, chunk.text, chunk.metadata, chunk.vector)
            for cid in ids:
                p = previous.position.get(cid)
                if p is not None:
                    rows.append(previous.rows[p])
                    vectors.append(previous.vectors[p])
                    source = previous.rows[p].source
                    source_meta.setdefault(source, previous.source_meta[source])
            order = {cid: i for i, cid in enumerate(ids)}  # the store's order
            sort = sorted(range(len(rows)), key=lambda i: order[rows[i].id])
            rows, vectors = [rows[i] for i in sort], [vectors[i] for i in sort]
        key_position = {row.key: i for i, row in enumerate(rows) if row.key}
        units = _read_units(kb, previous, key_position)
        matrix = np.vstack(vectors) if vectors else None
        return cls(rows, source_meta, version, units, matrix, bm25, kb.headings.read())

    def heading_cosines(self, positions: list[int], vector: np.ndarray) -> np.ndarray | None:
        """The cosine of each of these chunks' headings with the query vector; None when one
        of them has no heading vector (a store from before them: ranked without) or is not in
        this index (position -1)."""
        if not positions or min(positions) < 0:
            return None
        rows = self.heading_of[positions]
        if (rows < 0).any():
            return None
        return self.heading_vectors[rows].astype(np.float32) @ vector

    def mask(self, groups: frozenset[str]) -> np.ndarray:
        """1.0 for the chunks these groups may read, 0.0 for the others (cached per group set)."""
        mask = self._masks.get(groups)
        if mask is None:
            mask = np.zeros(len(self.ids), dtype=np.float32)
            for group in groups:
                if group in self._flags:
                    mask[self._flags[group]] = 1.0
            if len(self._masks) > 256:  # many distinct group sets: keep the memory bounded
                self._masks.clear()
            self._masks[groups] = mask
        return mask

    def unreadable_units(self, groups: frozenset[str]) -> int:
        """How many units these groups may not read (or whose chunk this index lacks)."""
        count = self._unreadable.get(groups)
        if count is None:
            known = self.unit_parents >= 0
            hidden = self.mask(groups)[self.unit_parents[known]] == 0
            count = int((~known).sum() + hidden.sum())
            if len(self._unreadable) > 256:  # as the masks: bounded
                self._unreadable.clear()
            self._unreadable[groups] = count
        return count

    def chunks_readable(self, ids: list[str], groups: frozenset[str]) -> list[bool | None]:
        """Whether these groups may read each chunk; None for ids this index lacks."""
        mask = self.mask(groups)
        return [bool(mask[p]) if (p := self.position.get(cid)) is not None else None for cid in ids]

    def units(self, ids: list[str]) -> list[tuple[int, int] | None]:
        """Each unit's (chunk position, position in the chunk); None for a unit this index lacks,
        (-1, 0) for one whose chunk it lacks."""
        if not self.unit_count or not ids:
            return [None] * len(ids)
        hashes = np.fromiter((hash(uid) for uid in ids), dtype=np.int64, count=len(ids))
        at = np.searchsorted(self.unit_hashes, hashes).clip(max=self.unit_count - 1)
        found = self.unit_hashes[at] == hashes
        return [
            (int(self.unit_parents[j]), int(self.unit_positions[j])) if hit else None
            for j, hit in zip(at, found, strict=True)
        ]

    def units_readable(self, ids: list[str], groups: frozenset[str]) -> list[bool | None]:
        """Whether these groups may read each unit (a unit has its chunk's audience)."""
        mask = self.mask(groups)
        # A unit whose chunk is unknown here is judged by its own metadata (the caller reads it).
        return [None if u is None or u[0] < 0 else bool(mask[u[0]]) for u in self.units(ids)]

    @functools.cached_property
    def vocabulary(self) -> list[str]:
        """Every stem the chunks use (for near spellings of a question's words)."""
        return sorted(self.bm25.vocab_dict) if self.ids else []

    def document_frequency(self, token: str, groups: frozenset[str]) -> int:
        """In how many chunks these groups may read the stem occurs (the BM25 matrix holds, per
        stem, the chunks it occurs in). Remembered per version: the answerability check asks for
        every word of every question, and a common stem's chunks grow with the corpus."""
        key = (token, groups)
        known = self._frequencies.get(key)
        if known is not None:
            return known
        column = self.bm25.vocab_dict.get(token) if self.ids else None
        if column is None:
            count = 0
        else:
            indptr, indices = self.bm25.scores["indptr"], self.bm25.scores["indices"]
            count = int(self.mask(groups)[indices[indptr[column] : indptr[column + 1]]].sum())
        if len(self._frequencies) > 100_000:  # many distinct words or group sets: stay bounded
            self._frequencies.clear()
        self._frequencies[key] = count
        return count

    def scores(self, tokens: list[str], groups: frozenset[str]) -> np.ndarray:
        """BM25 scores of every chunk; zero for chunks outside the reader's audience."""
        if not self.ids:
            return np.zeros(0, dtype=np.float32)
        token_ids = self.bm25.get_tokens_ids(tokens)
        if not token_ids:
            return np.zeros(len(self.ids), dtype=np.float32)
        return self.bm25.get_scores(token_ids) * self.mask(groups)

    def top(self, scores: np.ndarray, n: int) -> list[str]:
        """The ids of the (at most) n best-scoring chunks with a score above zero, best first,
        without sorting every chunk."""
        if n <= 0 or not scores.size:
            return []
        best = np.argpartition(-scores, n - 1)[:n] if n < scores.size else np.arange(scores.size)
        best = best[np.argsort(-scores[best], kind="stable")]
        return [self.ids[i] for i in best if scores[i] > 0]


# What the per-source record keeps of a chunk's metadata: what Versions reads (the title, the
# version facts, the audience flags) and the kind of document a question may name (doc_type).
# The whole record (owner, context, section, page, ...) held about 1.2 kB more per source (10k
# synthetic chunks of 4,898 sources: 44.3 -> 38.5 MB traced).
VERSION_FACTS = (
    "source",
    "title",
    "document_id",
    "effective_date",
    "expiry_date",
    "version",
    "doc_type",
)


def _version_facts(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if k in VERSION_FACTS or k.startswith(PREFIX)}


def _read_units(
    kb: KnowledgeBase, previous: CorpusIndex | None, key_position: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each unit's chunk (position) and place in it, by unit-id hash; known units are not read."""
    hashes: list[int] = []
    parents: list[int] = []
    positions: list[int] = []
    for n, page in enumerate(kb.read_pages(["metadatas"] if previous is None else [], units=True)):
        if previous is None and n % 6 == 5:
            _release_freed_memory()  # every sixth page: each trim walks the whole heap
        ids = page["ids"]
        if previous is None:
            metas = [meta or {} for meta in page["metadatas"]]
            found: list[tuple[int, int] | None] = [None] * len(ids)
        else:
            found = previous.units(ids)
            new = [uid for uid, unit in zip(ids, found, strict=True) if unit is None or unit[0] < 0]
            fresh = kb.chunks(new, units=True)
            metas = [fresh[uid].metadata if uid in fresh else {} for uid in ids]
        for uid, meta, unit in zip(ids, metas, found, strict=True):
            hashes.append(hash(uid))
            if unit is not None and unit[0] >= 0 and previous is not None:
                parents.append(key_position.get(previous.rows[unit[0]].key, -1))
                positions.append(unit[1])
            else:
                parents.append(key_position.get(meta.get("parent", ""), -1))
                positions.append(meta.get("position", 0))
    order = np.argsort(np.array(hashes, dtype=np.int64), kind="stable")
    return tuple(np.array(values, dtype=np.int64)[order] for values in (hashes, parents, positions))  # type: ignore[return-value]


def _release_freed_memory() -> None:
    """Hand freed heap back to the system (glibc keeps it): a build's pages of records, stems
    and BM25 internals stayed in RSS for good (350 MB at 50k chunks), and added up to its peak."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class IndexKeeper:
    """The index of the corpus version in force, for one retriever (thread-safe)."""

    def __init__(
        self,
        kb: KnowledgeBase,
        check_s: float = CHECK_S,
        background_from: int = BACKGROUND_FROM,
        bm25: tuple[float, float] = BM25_PARAMETERS,
    ) -> None:
        self.kb = kb
        self.bm25 = bm25
        self.check_s = check_s
        self.background_from = background_from
        self._index: CorpusIndex | None = None
        self._build_lock = threading.Lock()  # one build at a time
        self._builder_lock = threading.Lock()
        self._builder: threading.Thread | None = None
        self._checked = float("-inf")  # when the store's marker was last read
        self._stored = ""  # the store's marker as then read
        self._failed_at = float("-inf")  # when a background build last failed

    def current(self) -> CorpusIndex:
        """The index as it is (built first if there is none yet), without a version check."""
        return self._index or self._rebuild()

    def fresh(self) -> tuple[CorpusIndex, bool]:
        """The index after a version check, and whether the store is ahead of it (a new index
        is being built in the background meanwhile)."""
        index = self._index
        if index is None:
            return self._rebuild(), False
        if not self._moved(index):
            return index, False
        if len(index.ids) < self.background_from:
            return self._rebuild(), False
        self._start_background()
        return index, True

    def wait(self, timeout: float | None = None) -> None:
        """Until a background build under way has finished (for tests and benchmarks)."""
        builder = self._builder
        if builder is not None:
            builder.join(timeout)

    def _moved(self, index: CorpusIndex) -> bool:
        if self.kb.version() != index.version:  # this process wrote: seen at once
            return True
        now = time.monotonic()
        if now - self._checked >= self.check_s:
            self._checked, self._stored = now, self.kb.stored_version()
        return self._stored != index.version

    def _rebuild(self) -> CorpusIndex:
        with self._build_lock:
            self.kb.refresh_if_changed()
            index = self._index
            if index is None or index.version != self.kb.version():
                started = time.perf_counter()
                index = CorpusIndex.read(self.kb, previous=index, bm25=self.bm25)
                self._index, self._stored, self._checked = index, index.version, time.monotonic()
                _release_freed_memory()
                log.info(
                    "BM25 index built: %d chunks, corpus version %s (%.2f s)",
                    len(index.ids),
                    index.version,
                    time.perf_counter() - started,
                )
            return index

    def _start_background(self) -> None:
        with self._builder_lock:
            if self._builder is not None and self._builder.is_alive():
                return
            if time.monotonic() - self._failed_at < RETRY_S:
                return
            self._builder = threading.Thread(
                target=self._build_in_background, name="corpus-index", daemon=True
            )
            self._builder.start()

    def _build_in_background(self) -> None:
        try:
            self._rebuild()
        except Exception:  # noqa: BLE001 - the previous index keeps answering; tried again later
            log.exception("building the index of a new corpus version failed")
            self._failed_at = time.monotonic()
