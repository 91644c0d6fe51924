"""Cited extractive answers: quote the best sentences and bullets, each followed by its [n] marker.

The offline default invents nothing: every line of an answer is text from a retrieved passage, and
every [n] refers to a listed citation. When the best passage is not relevant enough, the answer
says so in the question's language and cites nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from assistant.chunking import SECTION_SEPARATOR
from assistant.config import Settings
from assistant.lexical import detect_language, stems
from assistant.retrieval import Passage

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-ZÄÖÜ0-9„\"(])")
# A period that ends no sentence: a day or ordinal ("am 1. März", "die 2. Stufe") or an
# abbreviation ("z. B. Kundendaten", "Dr. Albers", "Abs. 3").
_NO_SENTENCE_END = re.compile(
    r"(?:^|[\s(])(?:\d{1,3}|[a-zA-Z]|z\.\s?B|d\.\s?h|u\.\s?a|Dr|Prof|Nr|Abs|Art|bzw|ca|vgl|"
    r"ggf|evtl|inkl|usw|etc|Mio|Mrd|Tel|e\.\s?g|i\.\s?e|Mr|Mrs|Ms|St|No|Fig|approx|incl|vs)\.$"
)
_MARKER = re.compile(r"\[(\d+)\]")

REFUSAL = {
    "de": "Dazu finde ich in der Wissensbasis keine passende Stelle. Bitte formulieren Sie die "
    "Frage anders oder wenden Sie sich an die zuständige Fachabteilung.",
    "en": "I could not find anything in the knowledge base that answers this. Please rephrase the "
    "question or ask the responsible department.",
}
# An answer from passages that are related but not clearly on the question says so.
TENTATIVE = {
    "de": "Keine eindeutige Stelle gefunden: Die zitierten Passagen sind die ähnlichsten, "
    "beantworten die Frage aber vielleicht nicht genau.",
    "en": "No clear match found: the quoted passages are the closest ones but may not answer "
    "the question exactly.",
}
_LEAD = {
    "de": ("Laut „{title}“{where}:", "Ergänzend aus „{title}“{where}:"),
    "en": ("According to “{title}”{where}:", "See also “{title}”{where}:"),
}
_PAGE = {"de": "S. {page}", "en": "p. {page}"}
_TRANSLATION_NOTE = "(Quoted from the German source.)"


@dataclass(frozen=True)
class Citation:
    """A numbered source of an answer: where it is, the whole passage, and what was quoted."""

    n: int
    source: str
    title: str
    section: str
    page: int | None
    text: str
    score: float
    quoted: list[str] = field(default_factory=list)
    # Whether the document is in force: current | expired | superseded | pending (since when,
    # and for a superseded one the title of the version in force).
    status: str = "current"
    status_since: str = ""
    replaced_by: str = ""

    @classmethod
    def of(cls, n: int, passage: Passage, quoted: list[str]) -> Citation:
        """Source n: where the passage is, the whole passage, and the sentences quoted from it."""
        return cls(
            n=n,
            source=passage.source,
            title=passage.title,
            section=passage.section,
            page=passage.page,
            text=passage.text,
            score=passage.score,
            quoted=quoted,
            status=passage.validity.status,
            status_since=passage.validity.since,
            replaced_by=passage.validity.replaced_by_title,
        )


@dataclass(frozen=True)
class Answer:
    """An answer with [n] markers and the citations they refer to."""

    question: str
    answered: bool
    answer: str
    citations: list[Citation]
    language: str
    mode: str = "extractive"  # extractive | llm | fallback (LLM failed, extractive shown)
    query: str = ""  # what was searched, when a follow-up was completed from the conversation
    notice: str = ""  # shown with the answer: why the fallback was used, what is flagged
    flagged: list[str] = field(default_factory=list)  # LLM sentences the sources do not back
    # False when the best passage is only loosely related (between the two thresholds); the
    # notice then says the answer may not fit.
    confident: bool = True

    def as_dict(self) -> dict:
        return asdict(self)


def cited_numbers(text: str) -> set[int]:
    """The [n] markers that occur in a text."""
    return {int(n) for n in _MARKER.findall(text)}


def split_units(text: str) -> list[tuple[str, bool]]:
    """A passage as quotable units: (text, is_bullet), bullets whole, paragraphs by sentence."""
    units = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if re.match(r"^([-*•]|\d{1,2}[.)])\s+", line):
            units.append((re.sub(r"^([-*•]|\d{1,2}[.)])\s+", "", line), True))
        else:
            units.extend((s, False) for s in split_sentences(line))
    return units


def split_sentences(text: str) -> list[str]:
    """The sentences of one line of text; a date, ordinal or abbreviation does not end one."""
    sentences: list[str] = []
    for piece in _SENTENCE_END.split(text):
        piece = piece.strip()
        if not piece:
            continue
        if sentences and _NO_SENTENCE_END.search(sentences[-1]):
            sentences[-1] = f"{sentences[-1]} {piece}"
        else:
            sentences.append(piece)
    return sentences


def is_intro(passage: Passage) -> bool:
    """A short section opening (at most three sentences) whose subsections carry the substance."""
    return len(split_units(passage.text)) <= 3


def _for_language(passage: Passage, language: str, same: float, cross: float) -> float:
    """A similarity threshold: `same` for a passage in the question's language, else `cross`
    (cross-lingual similarities run lower)."""
    return same if passage.metadata.get("language", "de") == language else cross


class ExtractiveAnswerer:
    """Builds a cited answer from ranked passages without a language model."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def is_relevant(self, passage: Passage, language: str) -> bool:
        """Whether a passage is close enough to the question to answer from (calibrated)."""
        s = self.settings
        threshold = _for_language(passage, language, s.min_relevance, s.min_relevance_cross_lingual)
        return passage.dense >= threshold

    def is_confident(self, passages: list[Passage], language: str) -> bool:
        """Whether some passage is clearly on the question, not just related to it."""
        s = self.settings
        return any(
            p.dense
            >= _for_language(
                p, language, s.confident_relevance, s.confident_relevance_cross_lingual
            )
            for p in passages
        )

    def answer(
        self,
        question: str,
        passages: list[Passage],
        subsections: Callable[[Passage], list[Passage]] | None = None,
    ) -> Answer:
        """The cited answer from ranked passages; `subsections(p)` lists a passage's children."""
        language = detect_language(question)
        relevant = [p for p in passages if self.is_relevant(p, language)]
        if not relevant:
            return Answer(question, False, REFUSAL[language], [], language)
        best = relevant[0]
        children = subsections(best) if subsections else []
        if children and is_intro(best):
            # A short section intro: its subsections carry the answer.
            chosen = [best] + children[: self.settings.max_subsections]
        else:
            chosen = [best] + [p for p in relevant[1:] if p.score >= 0.8 * best.score]
            chosen = chosen[: self.settings.max_citations]
        question_stems = set(stems(question))
        blocks, citations = [], []
        for n, passage in enumerate(chosen, start=1):
            limit = (
                self.settings.max_answer_units
                if n == 1
                else max(2, self.settings.max_answer_units // 2)
            )
            units = self._pick_units(split_units(passage.text), question_stems, limit)
            if not units:
                continue
            if (
                n > 1
                and passage.source == chosen[0].source
                and passage.section.startswith(chosen[0].section + SECTION_SEPARATOR)
            ):
                # a subsection of the first passage: its own heading is enough
                lead = passage.section.rsplit(SECTION_SEPARATOR, 1)[-1] + ":"
            else:
                lead = _LEAD[language][0 if n == 1 else 1].format(
                    title=passage.title, where=self._where(passage, language)
                )
            lines, paragraph = [lead], []
            for text, bullet in units:
                if bullet:
                    if paragraph:
                        lines.append(" ".join(paragraph))
                        paragraph = []
                    lines.append(f"- {text} [{n}]")
                else:
                    paragraph.append(f"{text} [{n}]")
            if paragraph:
                lines.append(" ".join(paragraph))
            blocks.append("\n".join(lines))
            citations.append(Citation.of(n, passage, [text for text, _ in units]))
        text = "\n\n".join(blocks)
        if language == "en" and any(p.metadata.get("language", "de") != "en" for p in chosen):
            text += "\n\n" + _TRANSLATION_NOTE
        return Answer(question, True, text, citations, language)

    @staticmethod
    def _where(passage: Passage, language: str) -> str:
        parts = [passage.section] if passage.section else []
        if passage.page is not None:
            parts.append(_PAGE[language].format(page=passage.page))
        return f" ({', '.join(parts)})" if parts else ""

    @staticmethod
    def _pick_units(
        units: list[tuple[str, bool]], question_stems: set[str], limit: int
    ) -> list[tuple[str, bool]]:
        """All units of a short passage; of a long one, those sharing most words with the question."""
        if len(units) <= limit:
            return units
        overlap = [len(question_stems & set(stems(text))) for text, _ in units]
        if not any(overlap):
            return units[:limit]
        ranked = sorted(range(len(units)), key=lambda i: (-overlap[i], i))[:limit]
        return [units[i] for i in sorted(ranked)]
