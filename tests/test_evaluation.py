"""The golden set is well-formed, covers the corpus, and every expected passage exists."""

from __future__ import annotations

from collections import Counter
from functools import cache

import pytest
from conftest import REAL_CORPUS, ROOT

from assistant.evaluation.harness import (
    QUESTION_SETS,
    GoldenItem,
    evaluate,
    format_results,
    is_relevant,
    load_golden,
)
from assistant.ingest.documents import discover
from assistant.search.passage import Passage

# The held-out sets were written independently of the tuning (by someone who had not seen the
# golden set): the figures on them are what employees' unseen questions can expect.
GOLDEN, *HELD_OUT = [ROOT / "eval" / f"{name}.yaml" for name in QUESTION_SETS]


def stored_chunks(real_corpus_store) -> list[Passage]:
    """Every chunk of the real corpus store, as passages."""
    kb = real_corpus_store.kb
    got = kb.collection.get(include=["documents", "metadatas"])
    return [
        Passage(cid, content, meta, 0.0, 0.0, 0.0)
        for cid, content, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
    ]


def test_golden_set_shape():
    items = load_golden(GOLDEN)
    assert len(items) >= 60
    assert sum(not i.answerable for i in items) >= 10
    langs = Counter(i.lang for i in items if i.answerable)
    assert langs["de"] >= 20 and langs["en"] >= 20
    assert len({i.id for i in items}) == len(items)
    questions = {i.question for i in items}
    assert "Was muss ein CAIO mitbringen?" in questions and "What must a CAIO bring?" in questions


def test_golden_set_covers_every_document_and_snippets_exist(real_corpus_store):
    chunks = stored_chunks(real_corpus_store)
    expected_sources = set()
    for item in load_golden(GOLDEN):
        for expected in item.expected:
            expected_sources.add(expected["source"])
            assert any(is_relevant(c, [expected]) for c in chunks), (item.id, expected)
    corpus_sources = {p.relative_to(REAL_CORPUS).as_posix() for p in discover(REAL_CORPUS)}
    assert expected_sources == corpus_sources


@cache
def ids_of(path) -> frozenset[str]:
    return frozenset(i.id for i in load_golden(path))


@pytest.mark.parametrize("path", HELD_OUT, ids=lambda p: p.stem)
def test_held_out_sets_are_sound(real_corpus_store, path):
    chunks = stored_chunks(real_corpus_store)
    items = load_golden(path)
    other_ids = {i for other in [GOLDEN, *HELD_OUT] if other != path for i in ids_of(other)}
    assert len({i.id for i in items}) == len(items) and not other_ids & {i.id for i in items}
    assert sum(not i.answerable for i in items) >= 5
    assert {i.lang for i in items if i.answerable} == {"de", "en"}
    for item in items:
        for expected in item.expected:
            assert any(is_relevant(c, [expected]) for c in chunks), (item.id, expected)


def test_evaluate_reports_metrics(real_assistant):
    items = [i for i in load_golden(GOLDEN) if i.id in {"de-001", "en-001", "un-001"}]
    results = evaluate(real_assistant, items)
    assert set(results["by_language"]) == {"de", "en"}
    for stats in results["by_language"].values():
        assert 0.0 <= stats["recall@1"] <= stats["recall@3"] <= stats["recall@5"] <= 1.0
    assert "Refusal: recall" in format_results(results)


def test_evaluate_counts_answers_that_say_a_name_is_not_mentioned(real_assistant):
    """An answered question naming a tool no document mentions counts once, among the
    unanswerable questions; the answerable one does not."""
    tabnine = GoldenItem(
        "un-x",
        "en",
        "Our developers would like to switch from GitHub Copilot to Tabnine as their coding "
        "assistant at the Hamburg site. Is that allowed?",
        False,
        [],
    )
    items = [tabnine, *(i for i in load_golden(GOLDEN) if i.id == "de-001")]
    results = evaluate(real_assistant, items)
    assert (results["unanswerable_unmentioned"], results["answerable_unmentioned"]) == (1.0, 0.0)
    assert "'Not mentioned' opening: unanswerable 1.000, answerable 0.000" in format_results(
        results
    )
