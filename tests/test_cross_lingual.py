"""The cross-lingual bonus: for an English question over German documents, German passages get
back the edge the embedding model gives to English text, in ranking only."""

from __future__ import annotations

import pytest

from assistant.answering.pipeline import build_assistant


@pytest.fixture(scope="module")
def retrievers(real_corpus_store):
    """The real corpus ranked with the configured bonus and with none: (with, without)."""
    settings, kb = real_corpus_store.settings, real_corpus_store.kb
    assert settings.cross_lingual_bonus > 0
    # The bonus on its own: the query adapter (search/adapter.py) reorders as well.
    settings = settings.model_copy(update={"query_adapter_weight": 0.0})
    off = settings.model_copy(update={"cross_lingual_bonus": 0.0})
    return build_assistant(settings, kb).retriever, build_assistant(off, kb).retriever


def test_english_question_reaches_the_german_documents(retrievers):
    with_bonus, without = retrievers

    # The English guideline is short and general; its sections are near every English question.
    question = "Who approves an AI project with a budget over 50,000 euros?"
    plain = without.retrieve(question)
    bonus = with_bonus.retrieve(question)

    def german(passages) -> int:
        return sum(p.metadata["language"] == "de" for p in passages)

    assert german(bonus) > german(plain)
    # the intake process (German) decides this; it stays first either way
    assert bonus[0].source == plain[0].source == "prozesse/ki-projekt-intake.txt"

    # the relevance decision still sees the raw cosine: a passage in both lists scores the same
    raw = {p.id: p.dense for p in plain}
    assert all(p.dense == raw[p.id] for p in bonus if p.id in raw)


def test_german_question_is_ranked_as_before(retrievers):
    with_bonus, without = retrievers
    question = "Wer genehmigt ein KI-Projekt mit einem Budget über 50.000 Euro?"
    assert [p.id for p in with_bonus.retrieve(question)] == [
        p.id for p in without.retrieve(question)
    ]
