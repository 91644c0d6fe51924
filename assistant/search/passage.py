"""What retrieval hands on: a passage with its scores, and how common words are among the chunks
one reader may see (the answerability model's view of the vocabulary)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from assistant.ingest.chunking import passage_text
from assistant.search.lexical import stems
from assistant.search.validity import Validity


@dataclass(frozen=True)
class Passage:
    """One retrieved chunk with its scores."""

    id: str
    content: str
    metadata: dict = field(hash=False)
    score: float
    dense: float
    keyword: float
    validity: Validity = field(default=Validity(), hash=False)  # is its document in force today
    # The passage's units that matched the question best: (position, cosine), best first.
    matched: tuple[tuple[int, float], ...] = field(default=(), hash=False)
    # The part of `score` that is what its best unit adds to its heading (heading_lift_weight).
    lift: float = 0.0
    # The part of `score` that is its best unit's cosine with the adapted query (search/adapter.py).
    adapted: float = 0.0

    @property
    def source(self) -> str:
        return self.metadata.get("source", "")

    @property
    def title(self) -> str:
        return self.metadata.get("title", "")

    @property
    def section(self) -> str:
        return self.metadata.get("section", "")

    @property
    def page(self) -> int | None:
        return self.metadata.get("page")

    @property
    def text(self) -> str:
        """The passage as quoted, without the context line."""
        return passage_text(self.content)


@dataclass(frozen=True)
class Lexicon:
    """Document frequencies of stems among the chunks one reader may see."""

    chunks: int
    frequency: Callable[[str], int]
    # Whether the reader's documents know a word another way: a glossary equivalent they use
    # (DPIA for DSFA) or a near spelling of one of their words (NordGTP for NordGPT).
    knows: Callable[[str], bool] = lambda word: False
    # The glossary's other terms for a term as a whole ("KI-Board" for "AI Board").
    synonyms: Callable[[str], list[str]] = lambda term: []

    def idf(self, token: str) -> float:
        return math.log(1 + self.chunks / (1 + self.frequency(token)))

    def unknown(self, word: str) -> bool:
        """A word none of the reader's documents uses, in any spelling or equivalent; a
        hyphenated one ("KI-Ethikrat") when one of its parts is such a word."""
        if "-" in word:
            return any(self.unknown(part) for part in word.split("-") if len(part) >= 4)
        found = stems(word)
        if not found or any(self.frequency(t) for t in found):
            return False
        return not self.knows(word)
