"""Follow-up questions are completed from the conversation only when they point back."""

from __future__ import annotations

import pytest

from assistant.answering.followups import FollowUpResolver
from assistant.search.lexical import DEFAULT_GLOSSARY, Glossary

RESOLVER = FollowUpResolver(Glossary.load(DEFAULT_GLOSSARY))
CAIO = [
    {"role": "user", "content": "Was muss ein CAIO mitbringen?"},
    {"role": "assistant", "content": "…"},
]
APO = [{"role": "user", "content": "What does an AI Product Owner do?"}]


@pytest.mark.parametrize(
    ("question", "history", "expected"),
    [
        ("what about their tools?", APO, "what about their tools? (AI Product Owner)"),
        ("Wem berichtet er?", CAIO, "Wem berichtet er? (CAIO)"),
        ("Und was macht ein AI Product Owner?", CAIO, "Und was macht ein AI Product Owner?"),
        ("what about their tools?", [], "what about their tools?"),
        ("Welche Tools sind freigegeben?", CAIO, "Welche Tools sind freigegeben?"),
    ],
)
def test_resolve(question, history, expected):
    assert RESOLVER.resolve(question, history) == expected


def test_subject_comes_from_the_last_question_that_named_one():
    history = [*APO, {"role": "user", "content": "und was verdienen sie?"}]
    assert RESOLVER.resolve("und ihre Tools?", history) == "und ihre Tools? (AI Product Owner)"


def test_malformed_history_is_ignored():
    assert (
        RESOLVER.resolve("und ihre Tools?", [{"role": "user"}, "x", {"content": 3}])
        == "und ihre Tools?"
    )
