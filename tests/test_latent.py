"""Latent terms (off by default, ASSISTANT_LATENT_WEIGHT): stored with the units they belong to
(both store modes), mended at ingest, and an English question's top passages reordered by them."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import STORE_MODES

from assistant.answering.pipeline import build_retriever
from assistant.cli import format_report
from assistant.ingest.corpus import ingest_corpus
from assistant.search import latent
from assistant.search.passage import Passage
from assistant.store.latent import decode, encode

both_stores = pytest.mark.parametrize("store_mode", STORE_MODES, indirect=True)


def unit_ids(kb) -> set[str]:
    return set(kb.unit_store._collection.get(include=[])["ids"])


@both_stores
def test_every_stored_unit_has_its_terms_and_loses_them_with_it(small_corpus, kb_factory):
    kb = kb_factory(small_corpus, latent_weight=2.0)
    ingest_corpus(kb, small_corpus)
    units = unit_ids(kb)
    assert units and kb.latent.stored_ids() == units
    # Changed and removed files: the replaced units' terms go with them, the new ones come.
    (small_corpus / "reisekosten.md").write_text(
        "# Reisekosten\n\nBahnfahrten werden in der 2. Klasse erstattet, ab 4 Stunden Fahrt "
        "in der 1. Klasse.\n",
        encoding="utf-8",
    )
    (small_corpus / "coffee.html").unlink()
    report = ingest_corpus(kb, small_corpus)
    assert report.updated == ["reisekosten.md"] and report.deleted == ["coffee.html"]
    assert kb.latent.stored_ids() == unit_ids(kb) != units
    # By chunk key: every unit of a chunk, as stored.
    meta = kb.collection.get(where={"source": "reisekosten.md"}, include=["metadatas"])
    key = meta["metadatas"][0]["chunk_key"]
    terms = kb.latent_terms([key, "no-such-chunk"])
    assert list(terms) == [key] and all(len(t[0]) == len(t[1]) > 0 for t in terms[key])


@both_stores
def test_ingest_mends_missing_and_stale_terms(small_corpus, kb_factory, shared_embeddings):
    kb = kb_factory(small_corpus, latent_weight=2.0)
    ingest_corpus(kb, small_corpus)
    units = sorted(unit_ids(kb))
    # A store from before the terms existed (or an interrupted write), plus a leftover.
    kb.latent.drop(units[:3])
    kb.latent.put(["gone-unit"], ["gone-chunk"], ["Ein Satz, dessen Einheit fehlt."])
    before = shared_embeddings.embedded
    report = ingest_corpus(kb, small_corpus)
    assert report.skipped and not report.added and not report.updated  # nothing else re-embedded
    assert report.latent_mended == 3 and "latent terms computed for 3 stored units" in (
        format_report(report)
    )
    assert shared_embeddings.embedded == before
    assert kb.latent.stored_ids() == set(units)
    assert kb.mend_latent_terms() == (0, 0)


def test_terms_survive_their_encoding():
    indices = np.array([16383, 0, 512], dtype=np.int32)
    weights = np.array([1.75, 0.5, 0.0625], dtype=np.float32)
    back = decode(encode((indices, weights)))
    assert back[0].tolist() == [16383, 0, 512] and np.allclose(back[1], weights, rtol=1e-3)


def passage(pid: str, score: float) -> Passage:
    return Passage(pid, f"T\n{pid}", {"chunk_key": pid}, score, 0.9, 0.0)


def terms(*pairs: tuple[int, float]):
    return (np.array([i for i, _ in pairs]), np.array([w for _, w in pairs], dtype=np.float32))


ASKED = terms((1, 1.0), (2, 1.0))


def test_a_close_second_that_shares_the_question_s_terms_leads():
    stored = {"a": [terms((7, 1.0))], "b": [terms((9, 1.0)), terms((1, 1.0), (2, 0.5))]}
    ranked = latent.rerank(
        [passage("a", 0.95), passage("b", 0.9), passage("c", 0.5)],
        lambda: ASKED,
        lambda keys: {k: v for k, v in stored.items() if k in keys},
        weight=2.0,
    )
    assert [p.id for p in ranked] == ["b", "a", "c"]
    assert [p.score for p in ranked] == [0.9, 0.95, 0.5]  # the fusion's scores, reordered


def test_a_clear_first_an_unweighted_rerank_and_a_store_without_terms_change_nothing():
    def never():
        raise AssertionError("the question's terms were computed")

    stored = {"b": [ASKED]}
    clear = [passage("a", 0.95), passage("b", 0.8)]
    assert latent.rerank(clear, never, lambda keys: stored, weight=2.0) == clear
    close = [passage("a", 0.95), passage("b", 0.9)]
    assert latent.rerank(close, never, lambda keys: stored, weight=0.0) == close
    assert latent.rerank(close, never, lambda keys: {}, weight=2.0) == close


def test_off_by_default_none_computed(small_corpus, kb_factory):
    kb = kb_factory(small_corpus)
    assert kb.latent is None and kb.latent_terms(["any"]) == {}
    ingest_corpus(kb, small_corpus)
    on = kb_factory(small_corpus, latent_weight=2.0)
    assert on.latent is not None and on.latent.stored_ids() == set()  # nothing stored when off


def test_only_english_questions_are_reordered(small_corpus, kb_factory, monkeypatch):
    kb = kb_factory(small_corpus, latent_weight=2.0)
    ingest_corpus(kb, small_corpus)
    retriever = build_retriever(kb.settings, kb)
    asked: list[int] = []

    def spy(passages, question, units, weight):
        asked.append(len(passages))
        return passages

    monkeypatch.setattr(latent, "rerank", spy)
    assert retriever.retrieve("Wie viele Tage Urlaub gibt es?") and asked == []
    assert retriever.retrieve("How many days of holiday are there?") and asked
