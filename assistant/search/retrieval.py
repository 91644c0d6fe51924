"""Hybrid retrieval: dense cosine search in Chroma fused with German/English-stemmed BM25.

Both retrievers nominate candidates; every candidate gets both scores (a BM25-only candidate's
cosine comes from the vectors held per corpus version), each min-max normalised over the
candidates, then fused by weight (0.7 dense / 0.3 BM25 measured best on the seed articles). Before
fusion a chunk's dense score becomes that of its best unit (a sentence, bullet or table row,
searched in their own collection), so a long section no longer hides the sentence that answers; and
for a question not in the corpus language, passages in other languages than the question's get back
the small edge the model gives same-language text. The raw cosine of the best passage is kept
separately: it is the absolute signal behind the "not in the knowledge base" decision.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from functools import cache, partial

import numpy as np

from assistant.audience import EVERYONE, visible
from assistant.config import Settings
from assistant.ingest.chunking import SECTION_SEPARATOR
from assistant.search import latent
from assistant.search.adapter import QueryAdapter
from assistant.search.dictionary import Dictionary
from assistant.search.lexical import DocumentKinds, Glossary, detect_language, stems
from assistant.search.passage import Lexicon, Passage
from assistant.search.snapshot import CorpusIndex, IndexKeeper
from assistant.store.embeddings import embed_queries
from assistant.store.knowledge_base import KnowledgeBase, StoredChunk

PUBLIC = frozenset({EVERYONE})


def _minmax(values: np.ndarray) -> np.ndarray:
    span = float(values.max() - values.min()) if values.size else 0.0
    if span <= 1e-9:
        return np.where(values > 0, 1.0, 0.0) if values.size else values
    return (values - values.min()) / span


class HybridRetriever:
    """Ranks passages for a question; rebuilds its BM25 index when the corpus version changes."""

    def __init__(
        self,
        kb: KnowledgeBase,
        settings: Settings,
        glossary: Glossary | None = None,
        kinds: DocumentKinds | None = None,
        dictionary: Dictionary | None = None,
        adapter: QueryAdapter | None = None,
    ) -> None:
        self.kb = kb
        self.adapter = adapter
        self.settings = settings
        self.glossary = glossary or Glossary([])
        self.kinds = kinds or DocumentKinds({})
        self.dictionary = dictionary or Dictionary(None, settings.cache_dir)
        # The per-version index (search/snapshot.py): one version check per question at most.
        self.index = IndexKeeper(kb, bm25=(settings.bm25_k1, settings.bm25_b))

    def _language(self, meta: dict) -> dict:
        # A document that declares no language is in the corpus language: said once here, so
        # every passage's metadata carries it (ranking, thresholds, translation note).
        meta["language"] = meta.get("language") or self.settings.corpus_language
        return meta

    def lexicon(self, groups: frozenset[str] = PUBLIC) -> Lexicon:
        """How common words are among the chunks these groups may read."""
        snapshot = self.index.current()
        frequency = partial(snapshot.document_frequency, groups=groups)

        def knows(word: str) -> bool:
            if word.endswith("s") and word[:-1].isupper():  # "POs": the plural of an acronym
                word = word[:-1]
            own = stems(word)
            if any(frequency(t) for t in own + stems(" ".join(self.glossary.equivalents(word)))):
                return True
            # A typo of a word they use: a close spelling of a stem (long words only; short ones
            # are too close to each other to tell).
            if not own or len(own[0]) < 5:
                return False
            close = difflib.get_close_matches(own[0], snapshot.vocabulary, n=3, cutoff=0.8)
            return any(frequency(t) for t in close)

        # Cached: a question's refusal features and "not mentioned" names ask about the same words.
        return Lexicon(
            int(snapshot.mask(groups).sum()), frequency, cache(knows), self.glossary.synonyms
        )

    def readable(self, source: str, groups: frozenset[str]) -> bool:
        """Whether the reader may see anything of a stored document (asked of the store, not the
        index: an audience changed a moment ago counts at once)."""
        return any(visible(meta, groups) for meta in self.kb.metadatas(source))

    def subsections(self, passage: Passage, groups: frozenset[str] = PUBLIC) -> list[Passage]:
        """Chunks under the passage's section (deeper headings), in reading order.

        A section that opens with one sentence and keeps its substance in subsections ("The
        competencies fall into five fields", then one subsection per field) is answered by those."""
        if not passage.section:
            return []
        snapshot = self.index.current()
        prefix = passage.section + SECTION_SEPARATOR
        # Chosen by the index's sections; read (as stored now) are only the children.
        positions = snapshot.by_source.get(passage.source, np.zeros(0, dtype=np.int64))
        rows = [snapshot.rows[pos] for pos in positions]
        stored = self.kb.chunks([row.id for row in rows if row.section.startswith(prefix)])
        children = [
            (meta.get("chunk", 0), chunk_id, chunk.text, self._language(meta))
            for chunk_id, chunk in stored.items()
            if (meta := chunk.metadata).get("section", "").startswith(prefix)
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

    def _facts(self, snapshot: CorpusIndex, cid: str, unknown: dict[str, dict]) -> tuple[str, str]:
        """A candidate's source and language: from the index, else from its own metadata."""
        pos = snapshot.position.get(cid)
        if pos is None:
            meta = unknown[cid]
            return meta.get("source", ""), meta["language"]
        row = snapshot.rows[pos]
        return row.source, row.language or self.settings.corpus_language

    def _passages(
        self,
        ids: list[str],
        order: list[int],
        k: int,
        groups: frozenset[str],
        stored: dict[str, StoredChunk | None],
    ) -> Iterator[tuple[int, StoredChunk]]:
        """The first k candidates in `order` as stored now (read into `stored` once, None for one
        gone): one deleted since the index was built is skipped for the next."""
        given = 0
        for start in range(0, len(order), k):
            page = order[start : start + k]
            unread = [ids[i] for i in page if ids[i] not in stored]
            if unread:
                found = self.kb.chunks(unread)
                stored.update({cid: found.get(cid) for cid in unread})
            for i in page:
                chunk = stored.get(ids[i])
                if chunk is None or not visible(self._language(chunk.metadata), groups):
                    continue
                yield i, chunk
                given += 1
                if given == k:
                    return

    def retrieve(
        self, question: str, k: int | None = None, groups: frozenset[str] = PUBLIC
    ) -> list[Passage]:
        """The k best passages for the question that the reader's groups may see, best first.
        The audience is enforced here, in both searches (a Chroma `where` filter and a mask on
        BM25), so a restricted passage never reaches an answer, a citation or a prompt."""
        return self.retrieve_each([question], k, groups)[0]

    def retrieve_judged(
        self, question: str, k: int | None = None, groups: frozenset[str] = PUBLIC
    ) -> tuple[list[Passage], list[Passage]]:
        """retrieve(), and the first k of the same candidates ranked without the heading lift and
        the query adapter: what the answerability model was fitted on (both reorder far down)."""
        fitted: list[list[Passage]] = []
        return self.retrieve_each([question], k, groups, fitted)[0], fitted[0]

    def retrieve_each(
        self,
        questions: list[str],
        k: int | None = None,
        groups: frozenset[str] = PUBLIC,
        fitted: list[list[Passage]] | None = None,
    ) -> list[list[Passage]]:
        """retrieve() for several questions (the parts of a multi-part question), their query
        vectors embedded in one call: on a free core they cost one embedding's time. `fitted`,
        if given, gets each question's ranking without the lift and the adapter."""
        if not questions:
            return []
        asked = self._asked(questions)
        k = k or self.settings.top_k
        results = []
        for (question, equivalents, language), query_vector in zip(
            asked, self._vectors(asked), strict=True
        ):
            ranked, plain = self._rank(
                question, equivalents, language, query_vector, k, groups, fitted is not None
            )
            if fitted is not None:
                fitted.append(plain)
            if language != self.settings.corpus_language and self.kb.latent is not None:
                ranked = latent.rerank(
                    ranked,
                    partial(self.kb.embeddings.latent_query, question),  # type: ignore[attr-defined]
                    self.kb.latent_terms,
                    self.settings.latent_weight,
                )
            results.append(ranked)
        return results

    def query_vectors(self, questions: list[str]) -> list[np.ndarray]:
        """The vectors retrieve_each ranks the questions with."""
        return self._vectors(self._asked(questions))

    def _asked(self, questions: list[str]) -> list[tuple[str, str, str]]:
        """Each question with its glossary equivalents and its language (Dictionary.language)."""
        glossary, tell = self.glossary, self.dictionary.language
        return [(q, " ".join(glossary.equivalents(q)), detect_language(q, tell)) for q in questions]

    def _vectors(self, asked: list[tuple[str, str, str]]) -> list[np.ndarray]:
        """Embedded in one call: a question itself, or for one not in the corpus language the mean
        direction of it and its bridge (itself with its equivalents: German terms for English)."""
        bridged = [bool(e) and lang != self.settings.corpus_language for _, e, lang in asked]
        texts: list[str] = []
        for (q, e, _), bridge in zip(asked, bridged, strict=True):
            texts += [q, f"{q} {e}"] if bridge else [q]
        flat = iter(np.asarray(embed_queries(self.kb.embeddings, texts), dtype=np.float32))
        vectors = [next(flat) + next(flat) if bridge else next(flat) for bridge in bridged]
        return [v / np.linalg.norm(v) if b else v for v, b in zip(vectors, bridged, strict=True)]

    # Long: the ranking in the order it happens (dense, units, BM25, fusion, focus); each step is a few lines that read best together.
    def _rank(
        self,
        question: str,
        equivalents: str,
        language: str,
        query_vector: np.ndarray,
        k: int,
        groups: frozenset[str],
        plain: bool = False,
    ) -> tuple[list[Passage], list[Passage]]:
        """The k best passages, and (if `plain`) the k best without the lift and the adapter."""
        snapshot, behind = self.index.fresh()
        if not snapshot.ids:
            return [], []
        foreign = language != self.settings.corpus_language
        n = min(self.settings.candidates, len(snapshot.ids))
        vector = query_vector.tolist()
        # Who may read what comes from the index, not from each hit's metadata; an id it lacks
        # was added since: ranked (by its cosine alone) once the version marker has moved past
        # the index. The chunks themselves are searched only where the units cannot nominate
        # them: with no unit search, or while the store is ahead of the index (on the tuning
        # sets the same recall@5, one nearest-neighbour query less per question).
        hits = (
            self.kb.nearest(
                vector,
                n,
                groups,
                total=len(snapshot.ids),
                readable=lambda ids: snapshot.chunks_readable(ids, groups),
            )
            if behind or not self.settings.unit_candidates
            else []
        )
        dense = {cid: cosine for cid, cosine, _ in hits if behind or cid in snapshot.position}
        unknown = {cid: self._language(meta) for cid, _, meta in hits if meta}
        # The sentences, bullets and rows nearest to the question name their chunks: a chunk
        # is as close as its closest unit (a long section no longer hides the sentence that
        # answers), and the answer knows which of its units matched.
        # The adapted query (search/adapter.py) scores the same units (their vectors come with
        # the hits): each chunk's best one by the adapted cosine, as the adapter was fitted.
        adapted_vector = self._adapted(query_vector)
        matched, adapted = self._units(snapshot, vector, groups, adapted_vector)

        # Equivalents widen the keyword search with the same weight as the question's own words,
        # and so do the German words for an English question's words that the documents use.
        bm25 = snapshot.scores(stems(question), groups)
        if equivalents:
            bm25 = bm25 + 1.0 * snapshot.scores(stems(equivalents), groups)
        if foreign and language == "en":
            german = self.dictionary.translations(
                question,
                lambda term: any(snapshot.document_frequency(t, groups) for t in stems(term)),
            )
            if german:
                bm25 = bm25 + snapshot.scores(stems(" ".join(german)), groups)
        top_keyword = snapshot.top(bm25, n)
        for cid in [*top_keyword, *matched]:
            if cid not in dense:
                dense[cid] = float(snapshot.vectors[snapshot.position[cid]] @ query_vector)

        ids = list(dense)
        if not ids:
            # Nothing this snapshot knows: another process is writing (its marker has not moved).
            return [], []
        facts = [self._facts(snapshot, cid, unknown) for cid in ids]  # (source, language)
        dense_raw = np.array(
            [max(dense[cid], matched[cid][0][1]) if cid in matched else dense[cid] for cid in ids],
            dtype=np.float32,
        )
        dense_ranked = dense_raw.copy()
        if foreign:
            # The model favours passages in the question's own language; for a question in
            # another language than the corpus, the other-language passages get that back.
            other = np.array([lang != language for _, lang in facts])
            dense_ranked += self.settings.cross_lingual_bonus * other.astype(np.float32)
        keyword_raw = np.array(
            [bm25[p] if (p := snapshot.position.get(cid)) is not None else 0.0 for cid in ids],
            dtype=np.float32,
        )
        keyword_norm = keyword_raw / keyword_raw.max() if keyword_raw.max() > 0 else keyword_raw
        fused = (
            self.settings.dense_weight * _minmax(dense_ranked)
            + self.settings.bm25_weight * keyword_norm
        )
        lift = np.zeros(len(ids), dtype=np.float32)
        if self.settings.heading_lift_weight:
            # Every unit is embedded under its heading, so a bullet under a fitting heading is
            # close to the question by the heading alone; what its own words add beyond the
            # heading's cosine tells the sentence that answers from its neighbours.
            positions = [snapshot.position.get(cid, -1) for cid in ids]
            headings = snapshot.heading_cosines(positions, query_vector)
            if headings is not None:
                lift = self.settings.heading_lift_weight * (dense_raw - headings)
                fused = fused + lift
        learned = np.zeros(len(ids), dtype=np.float32)
        if adapted_vector is not None:
            for cid in set(ids) - adapted.keys():  # no unit found: its own vector (raw if new)
                pos = snapshot.position.get(cid)
                own = snapshot.vectors[pos] @ adapted_vector if pos is not None else dense[cid]
                adapted[cid] = float(own)
            weight = self.settings.query_adapter_weight
            learned = weight * np.array([adapted[cid] for cid in ids], dtype=np.float32)
            fused = fused + learned
        sources = [source for source, _ in facts]
        named = self.kinds.named(question)
        if named:
            # "laut Artikel", "according to the FAQ": the question asks about documents of that
            # kind, so their passages go before equally close ones from other documents.
            kind = [snapshot.source_meta.get(s, {}).get("doc_type") for s in sources]
            fused = fused + self.settings.document_kind_bonus * np.array(
                [k in named for k in kind], dtype=np.float32
            )
        # A superseded version is not cited when the version in force is among the candidates.
        validity = [snapshot.versions.validity(source, groups=groups) for source in sources]
        candidates = set(sources)
        keep = [not (v.status == "superseded" and v.replaced_by in candidates) for v in validity]
        order = [i for i in np.argsort(-fused) if keep[i]]
        plain_order = [i for i in np.argsort(-(fused - lift - learned)) if keep[i]] if plain else []

        def passage(i: int, chunk: StoredChunk) -> Passage:
            return Passage(
                id=ids[i],
                content=chunk.text,
                metadata=chunk.metadata,
                score=round(float(fused[i]), 4),
                dense=round(float(dense_raw[i]), 4),
                keyword=round(float(keyword_norm[i]), 4),
                validity=validity[i],
                matched=tuple(matched.get(ids[i], ())),
                lift=round(float(lift[i]), 4),
                adapted=round(float(learned[i]), 4),
            )

        # Both orders share most of their first k: read in one call to the store.
        first = list(dict.fromkeys(ids[i] for i in [*order[:k], *plain_order[:k]]))
        stored: dict[str, StoredChunk | None] = {**dict.fromkeys(first), **self.kb.chunks(first)}
        return (
            [passage(i, chunk) for i, chunk in self._passages(ids, order, k, groups, stored)],
            [passage(i, chunk) for i, chunk in self._passages(ids, plain_order, k, groups, stored)],
        )

    def _units(
        self,
        snapshot: CorpusIndex,
        vector: list[float],
        groups: frozenset[str],
        adapted_vector: np.ndarray | None = None,
    ) -> tuple[dict[str, list[tuple[int, float]]], dict[str, float]]:
        """The units nearest to a query vector, by their chunk: (position, cosine), best first;
        and with an adapted vector, each of those chunks' best adapted cosine among them."""
        matched: dict[str, list[tuple[int, float]]] = {}
        adapted: dict[str, float] = {}
        vectors: dict[str, np.ndarray] | None = {} if adapted_vector is not None else None
        unit_hits = self.kb.nearest(
            vector,
            self.settings.unit_candidates,
            groups,
            units=True,
            total=snapshot.unit_count,
            unreadable=snapshot.unreadable_units(groups),
            readable=lambda ids: snapshot.units_readable(ids, groups),
            vectors=vectors,
        )
        for (uid, cosine, meta), unit in zip(
            unit_hits, snapshot.units([hit[0] for hit in unit_hits]), strict=True
        ):
            pos, position = unit or (-1, 0)
            if meta:  # a unit the index lacks: its metadata names its chunk
                pos = snapshot.key_position.get(meta.get("parent", ""), -1)
                position = meta.get("position", 0)
            if pos < 0:
                continue
            cid = snapshot.ids[pos]
            matched.setdefault(cid, []).append((position, cosine))
            if vectors and adapted_vector is not None and uid in vectors:
                adapted[cid] = max(adapted.get(cid, -1.0), float(vectors[uid] @ adapted_vector))
        return matched, adapted

    def _adapted(self, query_vector: np.ndarray) -> np.ndarray | None:
        """The adapted query vector; None without adapter, weight, unit search or same dimension."""
        adapter = self.adapter
        if adapter is None or not self.settings.query_adapter_weight:
            return None
        if not self.settings.unit_candidates or adapter.dimension != query_vector.shape[0]:
            return None
        return adapter.apply(query_vector).astype(np.float32)
