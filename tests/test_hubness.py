"""Hubness correction: a chunk's closeness to its nearest neighbours, subtracted before fusion."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.pipeline import build_assistant
from assistant.retrieval import hubness


def unit(*rows: list[float]) -> np.ndarray:
    vectors = np.array(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_a_cluster_is_a_hub_and_an_outlier_is_not():
    vectors = unit([1, 0, 0], [1, 0.05, 0], [1, 0, 0.05], [0, 1, 0])
    scores = hubness(vectors, neighbours=2)
    assert scores[:3].min() > 0.99  # each cluster member has two near-identical neighbours
    assert scores[3] < 0.1  # the outlier's nearest chunks are far away
    # a chunk is not its own neighbour: in a pair each measures only the other
    assert hubness(unit([1, 0], [0.6, 0.8]), neighbours=5) == pytest.approx([0.6, 0.6])


def test_blocks_give_the_same_result_as_one_matrix():
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((2500, 16)).astype(np.float32)  # three blocks of 1024
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    expected = np.sort(sims, axis=1)[:, -3:].mean(axis=1)
    assert hubness(vectors, neighbours=3) == pytest.approx(expected, abs=1e-5)


def test_empty_and_single_chunk_stores():
    assert hubness(np.zeros((0, 3), dtype=np.float32), neighbours=5).size == 0
    assert hubness(np.zeros(0, dtype=np.float32), neighbours=5).size == 0
    assert hubness(unit([1, 0]), neighbours=5).tolist() == [0.0]


def test_the_article_cluster_no_longer_crowds_out_the_company_answer(real_corpus_store):
    """The seed article's chunks are near each other and near every CAIO question; without the
    correction they fill the top five for "who is our CAIO?", and the company's answer (the
    FAQ, the role profile, the policy name her) is not among them."""
    settings, kb = real_corpus_store
    corrected = build_assistant(settings, kb).retriever
    plain = build_assistant(settings.model_copy(update={"hub_penalty": 0.0}), kb).retriever

    snapshot = corrected._snapshot()
    by_source: dict[str, list[float]] = {}
    for meta, score in zip(snapshot.metadatas, snapshot.hubness, strict=True):
        by_source.setdefault(meta["source"], []).append(float(score))
    article = np.mean(by_source["artikel/chief-ai-officer-rolle.md"])
    assert article > np.mean(by_source["faq/faq-ki-assistent.md"])

    question = "wer ist bei uns der CAIO?"

    def names_her(passages) -> bool:
        says_who = ("Unsere Chief AI Officer ist", "Stelleninhaberin: Dr. Miriam Albers")
        return any(s in p.content for p in passages for s in says_who)

    assert not names_her(plain.retrieve(question))
    with_correction = corrected.retrieve(question)
    assert names_her(with_correction)
    # the relevance decision still sees the raw cosine, not the corrected one
    vectors = corrected.vectors([p.id for p in with_correction])
    query = np.asarray(kb.embeddings.embed_query(question), dtype=np.float32)
    for p in with_correction:
        assert p.dense == pytest.approx(float(vectors[p.id] @ query), abs=1e-3)
