"""Feedback records are stored durably with question, answer and citations, in SQLite (the default)
and in PostgreSQL."""

from __future__ import annotations

import pytest
from conftest import STORE_MODES

from assistant.records.feedback import FeedbackStore

ANSWER = {
    "question": "Was muss ein CAIO mitbringen?",
    "answered": True,
    "answer": "Laut … [1]",
    "citations": [{"n": 1, "source": "rollen/rollenprofil-caio.docx", "text": "…"}],
    "mode": "extractive",
}


@pytest.fixture
def app_db_url(store_overrides, tmp_path) -> str:
    """The app database of the store mode: SQLite in the data dir, or a new PostgreSQL database."""
    return store_overrides.get("database_url") or f"sqlite:///{tmp_path / 'app.sqlite'}"


@pytest.mark.parametrize("store_mode", STORE_MODES, indirect=True)
def test_ratings_and_comments_survive_a_reopen(app_db_url):
    store = FeedbackStore(app_db_url)
    up = store.add(ANSWER, 1)
    down = store.add(ANSWER, -1, "Quelle veraltet")
    store.set_comment(up, "  hilfreich  ")
    rows = FeedbackStore(app_db_url).all()
    assert [(r["id"], r["rating"], r["comment"]) for r in rows] == [
        (up, 1, "hilfreich"),
        (down, -1, "Quelle veraltet"),
    ]
    assert rows[0]["citations"][0]["source"] == "rollen/rollenprofil-caio.docx"
    assert rows[0]["question"] == ANSWER["question"] and rows[0]["created_at"] is not None


def test_rating_must_be_up_or_down(tmp_path):
    with pytest.raises(ValueError, match="rating"):
        FeedbackStore(f"sqlite:///{tmp_path / 'a.sqlite'}").add(ANSWER, 5)


@pytest.mark.parametrize("store_mode", STORE_MODES, indirect=True)
def test_an_answer_rated_again_keeps_one_row_with_the_last_rating(app_db_url):
    store = FeedbackStore(app_db_url)
    first = store.add(ANSWER, 1, receipt="a1b2c3")
    other = store.add(ANSWER, 1, receipt="d4e5f6")  # the same answer given to someone else
    again = store.add(ANSWER, -1, "doch nicht", receipt="a1b2c3")
    unreceipted = [store.add(ANSWER, 1), store.add(ANSWER, 1)]  # rows from before receipts
    rows = FeedbackStore(app_db_url).all()  # (and the index is created again without error)
    assert again == first and len(set(unreceipted)) == 2
    assert [(r["id"], r["rating"], r["comment"]) for r in rows] == [
        (first, -1, "doch nicht"),
        (other, 1, ""),
        (unreceipted[0], 1, ""),
        (unreceipted[1], 1, ""),
    ]


def test_text_the_database_cannot_encode_is_stored_readably(tmp_path):
    """JSON allows an unpaired surrogate ("\\ud800"); UTF-8 cannot hold one."""
    store = FeedbackStore(f"sqlite:///{tmp_path / 'a.sqlite'}")
    odd = {**ANSWER, "question": "q\ud800", "citations": [{"t": "\udfff"}]}
    rated = store.add(odd, 1, "bad \ud800")
    store.set_comment(rated, "still \udc80 bad")
    (row,) = store.all()
    assert (row["question"], row["comment"], row["citations"]) == (
        "q?",
        "still ? bad",
        [{"t": "?"}],
    )
