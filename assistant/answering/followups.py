"""Follow-up questions: which question to retrieve for, given the conversation so far.

Without a language model the rule is lexical: a follow-up that names no subject of its own and
points back ("what about their tools?", "und was kostet das?") is searched together with the
question it follows. A follow-up that names its own subject ("Und was macht ein AI Product
Owner?") is searched as it stands, so the earlier subject does not leak into it.
"""

from __future__ import annotations

from collections.abc import Iterable

from assistant.search.lexical import Glossary, words

_POINTING = frozenset(
    # English pronouns and determiners that refer back
    "they them their theirs it its this that these those he him his she her there such".split()
    # German
    + "sie ihr ihre ihren ihrem ihrer er ihn ihm sein seine seinen seinem seiner es das dies diese "
    "dieser dieses dessen deren dafür dazu davon damit darüber dort solche solchen".split()
)
_CONTINUING = (
    "and ",
    "und ",
    "what about",
    "how about",
    "and what",
    "was ist mit",
    "wie ist es mit",
    "also ",
)
# Groups of the glossary that name a subject a question can be about (roles, bodies, documents).
_SUBJECT_HINTS = (
    "CAIO",
    "AI PO",
    "CIO",
    "CDO",
    "DSB",
    "Betriebsrat",
    "KI-Board",
    "Richtlinie",
    "DSGVO",
)


def _user_turns(history: Iterable[dict]) -> list[str]:
    turns = []
    for turn in history or []:
        if (
            isinstance(turn, dict)
            and turn.get("role") == "user"
            and isinstance(turn.get("content"), str)
        ):
            turns.append(turn["content"].strip())
    return [t for t in turns if t]


class FollowUpResolver:
    """Turns a follow-up question into a self-contained search query."""

    def __init__(self, glossary: Glossary) -> None:
        self._subjects = Glossary(
            [g for g in glossary.groups if any(h in g for h in _SUBJECT_HINTS)]
        )

    def names_subject(self, question: str) -> bool:
        return bool(self._subjects.equivalents(question))

    def is_follow_up(self, question: str) -> bool:
        tokens = words(question)
        lowered = question.strip().lower()
        points_back = any(t in _POINTING for t in tokens) or lowered.startswith(_CONTINUING)
        return points_back and len(tokens) <= 12 and not self.names_subject(question)

    def resolve(self, question: str, history: Iterable[dict] | None) -> str:
        """The query to retrieve for: the question, or the previous one plus the question."""
        previous = _user_turns(history or [])
        if not previous or not self.is_follow_up(question):
            return question
        # The last earlier question that names a subject carries it; only the subject is
        # carried over, so the follow-up's own words decide what about it is asked.
        for earlier in reversed(previous):
            subject = self._subjects.mentions(earlier)
            if subject:
                return f"{question} ({', '.join(dict.fromkeys(subject))})"
        return f"{previous[-1]} {question}"
