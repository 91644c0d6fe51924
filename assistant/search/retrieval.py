"""Hybrid retrieval: dense cosine search in Chroma fused with German/English-stemmed BM25.

Both retrievers nominate candidates; every candidate gets both scores (a BM25-only candidate's
cosine comes from the vectors held per corpus version), each min-max normalised over the
candidates, then fused by weight (0.7 dense / 0.3 BM25 measured best on the seed articles). Before
fusion a chunk's dense score becomes that of its best unit (a sentence, bullet or table row, searched
in their own collection), so a long section no longer hides the sentence that answers; and for a question
not in the corpus language, passages in other languages than the question's get back the small
edge the model gives same-language text. The raw cosine of the best passage is
kept separately: it is the absolute signal behind the "not in the knowledge base" decision.
"""

from __future__ import annotations

import difflib
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import bm25s
import numpy as np

from assistant.audience import EVERYONE, visible
from assistant.config import Settings
from assistant.ingest.chunking import SECTION_SEPARATOR, passage_text
from assistant.search.lexical import Glossary, detect_language, stems
from assistant.search.validity import Validity, Versions
from assistant.store.knowledge_base import KnowledgeBase

log = logging.getLogger(__name__)
PUBLIC = frozenset({EVERYONE})


@dataclass(frozen=True)
class Passage:
    """One retrieved chunk with its scores."""

    id: str
    content: str
    metadata: dict = field(hash=False)
    score: float
    dense: float
    keyword: float
    validity: Validity = field(default=Validity(), hash=False)  # is its document in force today
    # The passage's units that matched the question best: (position, cosine), best first.
    matched: tuple[tuple[int, float], ...] = field(default=(), hash=False)

    @property
    def source(self) -> str:
        return self.metadata.get("source", "")

    @property
    def title(self) -> str:
        return self.metadata.get("title", "")

    @property
    def section(self) -> str:
        return self.metadata.get("section", "")

    @property
    def page(self) -> int | None:
        return self.metadata.get("page")

    @property
    def text(self) -> str:
        """The passage as quoted, without the context line."""
        return passage_text(self.content)


@dataclass(frozen=True)
class Lexicon:
    """Document frequencies of stems among the chunks one reader may see."""

    chunks: int
    frequency: Callable[[str], int]
    # Whether the reader's documents know a word another way: a glossary equivalent they use
    # (DPIA for DSFA) or a near spelling of one of their words (NordGTP for NordGPT).
    knows: Callable[[str], bool] = lambda word: False

    def idf(self, token: str) -> float:
        return math.log(1 + self.chunks / (1 + self.frequency(token)))

    def unknown(self, word: str) -> bool:
        """A word none of the reader's documents uses, in any spelling or equivalent."""
        found = stems(word)
        if not found or any(self.frequency(t) for t in found):
            return False
        return not self.knows(word)


class _Snapshot:
    """What ranking needs per corpus version: every chunk's text and unit vector, and a BM25 index
    over them (so a BM25-only candidate's cosine needs no second trip to Chroma)."""

    def __init__(
        self,
        ids: list[str],
        contents: list[str],
        metadatas: list[dict],
        vectors: np.ndarray,
        language: str,
        unit_count: int = 0,
        previous: _Snapshot | None = None,
        bm25: tuple[float, float] = (1.2, 0.5),
    ) -> None:
        self.unit_count = unit_count
        for meta in metadatas:
            # A document that declares no language is in the corpus language: said once here,
            # so every passage's metadata carries it (ranking, thresholds, translation note).
            meta["language"] = meta.get("language") or language
        self.ids = ids
        self.contents = contents
        self.metadatas = metadatas
        self.position = {chunk_id: i for i, chunk_id in enumerate(ids)}
        self.by_source: dict[str, list[int]] = {}
        for i, meta in enumerate(metadatas):
            self.by_source.setdefault(meta.get("source", ""), []).append(i)
        # Units name their chunk by its key; chunks stored before units existed have none.
        self.key_position = {
            meta["chunk_key"]: i for i, meta in enumerate(metadatas) if meta.get("chunk_key")
        }
        self.languages = np.array([m["language"] for m in metadatas], dtype=object)
        self.versions = Versions(metadatas)
        self._masks: dict[frozenset[str], np.ndarray] = {}
        self.bm25 = bm25s.BM25(k1=bm25[0], b=bm25[1])
        tokens = _chunk_stems(ids, contents, metadatas, previous)
        # Stems hold no spaces (they are made of word characters): one compact string per chunk.
        self.stems: list[str] = [" ".join(chunk_tokens) for chunk_tokens in tokens]
        if ids:
            self.bm25.index(tokens, show_progress=False)
        # Which chunks hold a stem: how common a question's words are among what a reader sees.
        postings: dict[str, list[int]] = {}
        for position, chunk_tokens in enumerate(tokens):
            for token in set(chunk_tokens):
                postings.setdefault(token, []).append(position)
        self.postings = {t: np.array(p, dtype=np.int32) for t, p in postings.items()}
        self.vocabulary = sorted(self.postings)
        self.unit = vectors / (np.linalg.norm(vectors, axis=-1, keepdims=True) + 1e-12)

    def mask(self, groups: frozenset[str]) -> np.ndarray:
        """1.0 for the chunks these groups may read, 0.0 for the others (cached per group set)."""
        if groups not in self._masks:
            self._masks[groups] = np.array(
                [visible(m, groups) for m in self.metadatas], dtype=np.float32
            )
        return self._masks[groups]

    def document_frequency(self, token: str, groups: frozenset[str]) -> int:
        """In how many chunks these groups may read the stem occurs."""
        positions = self.postings.get(token)
        return 0 if positions is None else int(self.mask(groups)[positions].sum())

    def scores(self, tokens: list[str], groups: frozenset[str]) -> np.ndarray:
        """BM25 scores of every chunk; zero for chunks outside the reader's audience."""
        if not self.ids:
            return np.zeros(0, dtype=np.float32)
        token_ids = self.bm25.get_tokens_ids(tokens)
        if not token_ids:
            return np.zeros(len(self.ids), dtype=np.float32)
        return self.bm25.get_scores(token_ids) * self.mask(groups)


def _minmax(values: np.ndarray) -> np.ndarray:
    span = float(values.max() - values.min()) if values.size else 0.0
    if span <= 1e-9:
        return np.where(values > 0, 1.0, 0.0) if values.size else values
    return (values - values.min()) / span


def _chunk_stems(
    ids: list[str], contents: list[str], metadatas: list[dict], previous: _Snapshot | None
) -> list[list[str]]:
    """Each chunk's BM25 tokens: its stems and its section's. Section headings count twice (a
    field boost): they say what a passage is about, where the document title on every chunk of
    a document does not tell them apart. A chunk the previous version held with the same text and
    section keeps its stems (stemming every chunk again was most of a version change's cost)."""
    tokens: list[list[str]] = []
    for chunk_id, content, meta in zip(ids, contents, metadatas, strict=True):
        section = meta.get("section", "")
        p = previous.position.get(chunk_id) if previous is not None else None
        if (
            previous is not None
            and p is not None
            and previous.contents[p] == content
            and previous.metadatas[p].get("section", "") == section
        ):
            joined = previous.stems[p]
            tokens.append(joined.split(" ") if joined else [])
        else:
            tokens.append(stems(content) + stems(section))
    return tokens


class HybridRetriever:
    """Ranks passages for a question; rebuilds its BM25 index when the corpus version changes."""

    def __init__(
        self, kb: KnowledgeBase, settings: Settings, glossary: Glossary | None = None
    ) -> None:
        self.kb = kb
        self.settings = settings
        self.glossary = glossary or Glossary([])
        self._snapshot_cache: _Snapshot | None = None
        self._snapshot_version: str | None = None
        self._lock = threading.Lock()

    def _snapshot(self) -> _Snapshot:
        with self._lock:
            self.kb.refresh_if_changed()
            version = self.kb.version()
            if self._snapshot_cache is None or version != self._snapshot_version:
                stored = self.kb.all_chunks()
                self._snapshot_cache = _Snapshot(
                    stored.ids,
                    stored.texts,
                    stored.metadatas,
                    stored.vectors,
                    self.settings.corpus_language,
                    self.kb.unit_count(),
                    previous=self._snapshot_cache,
                    bm25=(self.settings.bm25_k1, self.settings.bm25_b),
                )
                self._snapshot_version = version
                log.info(
                    "BM25 index built: %d chunks, corpus version %s",
                    len(stored.ids),
                    version,
                )
            return self._snapshot_cache

    def lexicon(self, groups: frozenset[str] = PUBLIC) -> Lexicon:
        """How common words are among the chunks these groups may read."""
        snapshot = self._snapshot()

        def frequency(token: str) -> int:
            return snapshot.document_frequency(token, groups)

        def knows(word: str) -> bool:
            if word.endswith("s") and word[:-1].isupper():  # "POs": the plural of an acronym
                word = word[:-1]
            bridged = stems(" ".join([word, *self.glossary.equivalents(word)]))
            if any(frequency(t) for t in bridged):
                return True
            # A typo of a word they use: a close spelling of a stem (long words only; short ones
            # are too close to each other to tell).
            stem = stems(word)[0] if stems(word) else ""
            if len(stem) < 5:
                return False
            close = difflib.get_close_matches(stem, snapshot.vocabulary, n=3, cutoff=0.8)
            return any(frequency(t) for t in close)

        return Lexicon(int(snapshot.mask(groups).sum()), frequency, knows)

    def readable(self, source: str, groups: frozenset[str]) -> bool:
        """Whether the reader may see anything of a stored document."""
        snapshot = self._snapshot()
        return any(
            visible(snapshot.metadatas[pos], groups) for pos in snapshot.by_source.get(source, [])
        )

    def subsections(self, passage: Passage, groups: frozenset[str] = PUBLIC) -> list[Passage]:
        """Chunks under the passage's section (deeper headings), in reading order.

        A section that opens with one sentence and keeps its substance in subsections ("The
        competencies fall into five fields", then one subsection per field) is answered by those.
        """
        if not passage.section:
            return []
        snapshot = self._snapshot()
        prefix = passage.section + SECTION_SEPARATOR
        children = [
            (meta.get("chunk", 0), snapshot.ids[pos], snapshot.contents[pos], meta)
            for pos in snapshot.by_source.get(passage.source, [])
            if (meta := snapshot.metadatas[pos]).get("section", "").startswith(prefix)
            and visible(meta, groups)
        ]
        return [
            Passage(
                chunk_id,
                content,
                meta,
                passage.score,
                passage.dense,
                passage.keyword,
                passage.validity,
            )
            for _, chunk_id, content, meta in sorted(children, key=lambda c: c[0])
        ]

    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        """The stored embeddings of chunks, by id (ids no longer stored are left out)."""
        return self.kb.vectors(ids)

    # Long: the ranking in the order it happens (dense, units, BM25, fusion, focus); each step is a few lines that read best together.
    def retrieve(
        self, question: str, k: int | None = None, groups: frozenset[str] = PUBLIC
    ) -> list[Passage]:
        """The k best passages for the question that the reader's groups may see, best first.

        The audience is enforced here, in both searches (a Chroma `where` filter and a mask on
        BM25), so a restricted passage never reaches an answer, a citation or a prompt.
        """
        k = k or self.settings.top_k
        snapshot = self._snapshot()
        if not snapshot.ids:
            return []
        equivalents = " ".join(self.glossary.equivalents(question))
        language = detect_language(question)
        foreign = language != self.settings.corpus_language
        query_vector = np.asarray(self.kb.embeddings.embed_query(question), dtype=np.float32)
        if equivalents and foreign:
            # Cross-lingual bridge: also embed the question with the glossary's equivalents
            # (German terms for an English question) and search with the mean direction.
            bridged = self.kb.embeddings.embed_query(f"{question} {equivalents}")
            query_vector = query_vector + np.asarray(bridged, dtype=np.float32)
            query_vector /= np.linalg.norm(query_vector)
        n = min(self.settings.candidates, len(snapshot.ids))
        vector = query_vector.tolist()
        # An id the BM25 snapshot lacks was added after it was built; the next query sees it.
        dense = {
            cid: cosine
            for cid, cosine, _ in self.kb.nearest(vector, n, groups, total=len(snapshot.ids))
            if cid in snapshot.position
        }
        # The sentences, bullets and rows nearest to the question name their chunks: a chunk
        # is as close as its closest unit (a long section no longer hides the sentence that
        # answers), and the answer knows which of its units matched.
        matched: dict[str, list[tuple[int, float]]] = {}
        for _, cosine, meta in self.kb.nearest(
            vector, self.settings.unit_candidates, groups, units=True, total=snapshot.unit_count
        ):
            pos = snapshot.key_position.get(meta.get("parent", ""))
            if pos is not None:
                matched.setdefault(snapshot.ids[pos], []).append((meta.get("position", 0), cosine))

        # Equivalents widen the keyword search with the same weight as the question's own words.
        bm25 = snapshot.scores(stems(question), groups)
        if equivalents:
            bm25 = bm25 + 1.0 * snapshot.scores(stems(equivalents), groups)
        top_keyword = [snapshot.ids[i] for i in np.argsort(-bm25)[:n] if bm25[i] > 0]
        for cid in [*top_keyword, *matched]:
            if cid not in dense:
                dense[cid] = float(snapshot.unit[snapshot.position[cid]] @ query_vector)

        ids = list(dense)
        if not ids:
            # Neither search found a chunk this snapshot knows: the store is being written by
            # another process (its version marker has not moved yet). Nothing to rank.
            return []
        positions = np.array([snapshot.position[cid] for cid in ids])
        dense_raw = np.array(
            [max(dense[cid], matched[cid][0][1]) if cid in matched else dense[cid] for cid in ids],
            dtype=np.float32,
        )
        dense_ranked = dense_raw.copy()
        if foreign:
            # The model favours passages in the question's own language; for a question in
            # another language than the corpus, the other-language passages get that back.
            other = snapshot.languages[positions] != language
            dense_ranked += self.settings.cross_lingual_bonus * other.astype(np.float32)
        keyword_raw = bm25[positions].astype(np.float32)
        keyword_norm = keyword_raw / keyword_raw.max() if keyword_raw.max() > 0 else keyword_raw
        fused = (
            self.settings.dense_weight * _minmax(dense_ranked)
            + self.settings.bm25_weight * keyword_norm
        )
        # A superseded version is not cited when the version in force is among the candidates.
        sources = [snapshot.metadatas[pos].get("source", "") for pos in positions]
        validity = [snapshot.versions.validity(source, groups=groups) for source in sources]
        candidates = set(sources)
        keep = [not (v.status == "superseded" and v.replaced_by in candidates) for v in validity]
        order = [i for i in np.argsort(-fused) if keep[i]][:k]
        passages = []
        for i in order:
            pos = positions[i]
            passages.append(
                Passage(
                    id=ids[i],
                    content=snapshot.contents[pos],
                    metadata=snapshot.metadatas[pos],
                    score=round(float(fused[i]), 4),
                    dense=round(float(dense_raw[i]), 4),
                    keyword=round(float(keyword_norm[i]), 4),
                    validity=validity[i],
                    matched=tuple(matched.get(ids[i], ())),
                )
            )
        return passages
