"""What comes back from the browser is reduced to what the chat writes before it is shown, stored
or rated."""

from __future__ import annotations

from assistant.web.chat_state import MAX_MESSAGES, plain_json, plain_messages, plain_turns


def test_messages_keep_a_role_and_text_only():
    messages = [
        {"role": "user", "content": "Hallo?"},
        {"role": "assistant", "content": [{"type": "text", "text": "<b>A</b>"}]},
        {"role": "assistant", "content": {"path": "/srv/data/app.sqlite"}},
        {"role": "assistant", "content": [{"type": "file", "file": {"path": "/etc/passwd"}}]},
        {"role": "assistant", "content": [{"type": "text", "text": "x"}, {"type": "file"}]},
        {"role": "system", "content": "Du bist …"},
        "text",
        {"role": "user", "content": "Danke", "metadata": {"title": "x"}},
    ]
    assert plain_messages(messages) == [
        {"role": "user", "content": "Hallo?"},
        {"role": "assistant", "content": "<b>A</b>"},
        {"role": "user", "content": "Danke"},
    ]
    assert plain_messages("notalist") == plain_messages(None) == []
    many = [{"role": "user", "content": str(n)} for n in range(MAX_MESSAGES + 5)]
    assert plain_messages(many)[0]["content"] == "5"


def test_turns_keep_their_known_fields_of_the_right_kind():
    answer = {"question": "q", "answer": "a", "citations": []}
    turns = [
        {"question": "q", "answer": answer, "message": 1, "receipt": "r", "extra": 1},
        {"question": "offen", "answer": None},
        {"question": 5, "answer": answer},
        {"question": "q", "answer": "not a dict"},
        {"question": "q", "answer": answer, "message": True, "receipt": 7},
        None,
    ]
    assert plain_turns(turns) == [
        {"question": "q", "answer": answer, "message": 1, "receipt": "r"},
        {"question": "offen", "answer": None},
        {"question": "q", "answer": answer},
    ]
    assert plain_turns({"turns": []}) == []


def test_an_answer_keeps_nothing_gradio_would_take_for_a_file():
    as_file = {"path": "/srv/corpus/personal/hr.md", "meta": {"_type": "gradio.FileData"}}
    answer = {"answer": "a", "citations": [{"source": "faq.md", "quoted": ["x"], "f": as_file}]}
    turn = plain_turns([{"question": "q", "answer": {**answer, "x": as_file}}])[0]
    assert turn["answer"] == {
        "answer": "a",
        "citations": [{"source": "faq.md", "quoted": ["x"], "f": {}}],
        "x": {},
    }
    deep: object = "unten"
    for _ in range(20):
        deep = [deep]
    assert "unten" not in str(plain_json(deep)) and plain_json({1: b"x"}) == {"1": None}
