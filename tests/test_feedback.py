"""Feedback records are stored durably with question, answer and citations."""

from __future__ import annotations

import pytest

from assistant.feedback import FeedbackStore

ANSWER = {
    "question": "Was muss ein CAIO mitbringen?",
    "answered": True,
    "answer": "Laut … [1]",
    "citations": [{"n": 1, "source": "rollen/rollenprofil-caio.docx", "text": "…"}],
    "mode": "extractive",
}


def test_ratings_and_comments_survive_a_reopen(tmp_path):
    url = f"sqlite:///{tmp_path / 'app.sqlite'}"
    store = FeedbackStore(url)
    up = store.add(ANSWER, 1)
    down = store.add(ANSWER, -1, "Quelle veraltet")
    store.set_comment(up, "  hilfreich  ")
    rows = FeedbackStore(url).all()
    assert [(r["id"], r["rating"], r["comment"]) for r in rows] == [
        (up, 1, "hilfreich"),
        (down, -1, "Quelle veraltet"),
    ]
    assert rows[0]["citations"][0]["source"] == "rollen/rollenprofil-caio.docx"
    assert rows[0]["question"] == ANSWER["question"] and rows[0]["created_at"] is not None


def test_rating_must_be_up_or_down(tmp_path):
    with pytest.raises(ValueError, match="rating"):
        FeedbackStore(f"sqlite:///{tmp_path / 'a.sqlite'}").add(ANSWER, 5)
