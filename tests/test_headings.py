"""Heading vectors: each chunk's context line embedded once at ingest (both store modes), read by
the per-version index, and ranked on: what a passage's best unit adds to its heading."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import STORE_MODES

from assistant.answering.pipeline import build_retriever
from assistant.ingest.corpus import ingest_corpus
from assistant.search.snapshot import CorpusIndex
from assistant.store.headings import HEADINGS_TABLE, chunk_heading, heading_key, heading_text

both_stores = pytest.mark.parametrize("store_mode", STORE_MODES, indirect=True)


def contexts(kb) -> set[str]:
    got = kb.collection.get(include=["documents", "metadatas"])
    return {chunk_heading(t, m) for t, m in zip(got["documents"], got["metadatas"], strict=True)}


@both_stores
def test_every_heading_is_embedded_once_and_read_by_the_index(
    small_corpus, kb_factory, shared_embeddings
):
    kb = kb_factory(small_corpus)
    ingest_corpus(kb, small_corpus)
    keys, matrix = kb.headings.read()
    assert set(keys) >= {heading_key(c) for c in contexts(kb)}
    assert matrix.dtype == np.float16
    assert np.allclose(np.linalg.norm(matrix.astype(np.float32), axis=1), 1.0, atol=1e-2)
    # The vector is the heading's own passage embedding.
    first = sorted(contexts(kb))[0]
    expected = np.asarray(shared_embeddings.embed_documents([first])[0], dtype=np.float32)
    stored = matrix[keys[heading_key(first)]].astype(np.float32)
    assert float(stored @ expected / np.linalg.norm(expected)) > 0.999
    # Nothing is embedded again for an unchanged corpus.
    assert kb.headings.ensure(sorted(contexts(kb))) == 0
    index = CorpusIndex.read(kb)
    assert (index.heading_of >= 0).all() and index.heading_vectors.shape[0] == len(keys)


def test_a_store_from_before_headings_gets_them_at_its_next_ingest(small_corpus, kb_factory):
    kb = kb_factory(small_corpus)
    ingest_corpus(kb, small_corpus)
    version = kb.version()
    with kb.headings.engine.begin() as conn:  # as a store written before heading vectors
        conn.execute(HEADINGS_TABLE.delete())
    retriever = build_retriever(kb.settings, kb)
    index = retriever.index.current()
    assert (index.heading_of < 0).all()
    vector = np.ones(index.vectors.shape[1], dtype=np.float32)
    assert index.heading_cosines([0], vector) is None  # ranked without them, no error
    assert retriever.retrieve("Wie werden Reisekosten erstattet?")

    report = ingest_corpus(kb, small_corpus)
    assert report.ok and sorted(report.updated) == sorted(report.updated + report.added)
    assert report.updated and kb.version() != version  # readers build a new index
    assert len(kb.headings.read()[0]) == len(contexts(kb))
    assert (retriever.index.fresh()[0].heading_of >= 0).all()


def test_the_ranking_adds_what_the_best_unit_says_beyond_its_heading(
    small_corpus, kb_factory, shared_embeddings
):
    """Each passage's fused score gains weight x (its best unit's cosine - its heading's)."""
    kb = kb_factory(small_corpus)
    ingest_corpus(kb, small_corpus)
    question = "Wie werden Bahnfahrten auf Dienstreisen erstattet?"
    scores = {}
    for weight in (0.0, 3.0):
        settings = kb.settings.model_copy(update={"heading_lift_weight": weight})
        scores[weight] = {p.id: p for p in build_retriever(settings, kb).retrieve(question, k=10)}
    query = np.asarray(shared_embeddings.embed_query(question), dtype=np.float32)
    both = scores[0.0].keys() & scores[3.0].keys()
    assert len(both) >= 3
    for pid in both:
        passage = scores[3.0][pid]
        context = chunk_heading(passage.content, passage.metadata)
        heading = np.asarray(shared_embeddings.embed_documents([context])[0], dtype=np.float32)
        lift = passage.dense - float(query @ heading / np.linalg.norm(heading))
        assert passage.score - scores[0.0][pid].score == pytest.approx(3.0 * lift, abs=3e-3)


def test_a_question_heading_is_content_so_the_heading_is_the_title():
    faq = ("FAQ > Darf ich ChatGPT nutzen?", "FAQ", "Darf ich ChatGPT nutzen?")
    assert heading_text(*faq) == "FAQ"
    assert heading_text("Richtlinie > 4 Werkzeuge", "Richtlinie", "4 Werkzeuge") == (
        "Richtlinie > 4 Werkzeuge"
    )
    assert heading_text("Ohne Titel > Wer?", "", "Wer?") == "Ohne Titel > Wer?"
