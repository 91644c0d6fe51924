"""Cited extractive answers: quote the sentences that answer, each followed by its [n] marker.

The offline default invents nothing: every line of an answer is text from a retrieved passage, and
every [n] refers to a listed citation. When the best passage is not relevant enough, the answer
says so in the question's language and cites nothing.

How an answer is put together:
- the lead is the best passage, unless its heading names another tool or body than the one asked
  about (NordGPT's FAQ entry for ChatGPT); a "Ja."/"Nein." about another one is never quoted;
- from each passage the units that matched the question (sentences, bullets, table rows), not its
  first ones (quoting.py), laid out as paragraphs, lists and tables (layout.py); a long list says
  how much was left out;
- at most `max_citations` passages are quoted (each part of a multi-part question gets its own),
  a few more are named as "see also" and shown as source cards;
- English questions answered from German text get an English frame naming the German source.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field

from assistant.answering.layout import lay_out
from assistant.answering.question import SMALL_TALK_REPLY, Question, analyse, gives, mentions, names
from assistant.answering.quoting import pick_units
from assistant.config import Settings
from assistant.ingest.chunking import SECTION_SEPARATOR
from assistant.ingest.units import Unit, split_sentences, split_units
from assistant.search.lexical import Tell, stems
from assistant.search.passage import Passage

__all__ = ["split_sentences", "split_units"]  # one splitter for the index and the answer

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
# An answer to a question that names something no document mentions ("Can we use Tabnine?") says
# so before it quotes the closest passages (a general rule may still answer it).
NOT_MENTIONED = {
    "de": "Die Dokumente erwähnen {names} nicht; zitiert sind die nächstliegenden Stellen.",
    "en": "The documents do not mention {names}; the passages quoted are the closest they have.",
}
# The same before a refusal, which quotes nothing.
NOT_MENTIONED_AT_ALL = {
    "de": "Die Dokumente erwähnen {names} nicht.",
    "en": "The documents do not mention {names}.",
}
_QUOTED = {"de": "„{}“", "en": "“{}”"}
_LEAD = {
    "de": ("Laut „{title}“{where}:", "Ergänzend aus „{title}“{where}:"),
    "en": ("According to “{title}”{where}:", "See also “{title}”{where}:"),
}
# An English answer from a German passage says which German source answers.
_LEAD_GERMAN = ("The German “{title}”{where} says:", "The German “{title}”{where} adds:")
_SEE_ALSO = {"de": "Weitere Stellen: {refs}.", "en": "Also relevant: {refs}."}
_BARE_VERDICT = re.compile(r"^(ja|nein|yes|no)\b", re.IGNORECASE)
MAX_SEE_ALSO = 3
# cosine: a passage besides the lead is quoted (up to max_citations) when its best unit is this
# close to the lead's, else only named under "see also" (its share of the lead's min-max
# normalised fused score let far passages in and kept close ones out; README, sixteenth round).
CLOSE_TO_LEAD = 0.02
PART_COVERED = 0.01  # cosine: a quoted passage this close to a part's best one answers it too
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
    chunk_id: str = ""  # the stored chunk: the document view marks it

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
            chunk_id=passage.id,
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
    # The question's names no document the asker may read mentions (said first, also in a refusal)
    unmentioned: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def cited_numbers(text: str) -> set[int]:
    """The [n] markers that occur in a text."""
    return {int(n) for n in _MARKER.findall(text)}


# Whom to ask when the documents do not answer.
ASK = {"de": "Ansprechpartner: {contact}.", "en": "Whom to ask: {contact}."}
_OWNER = {"de": "{owner}, verantwortlich für „{title}“", "en": "{owner}, owner of “{title}”"}


def not_mentioned(names: list[str], language: str, quoting: bool = True) -> str:
    """The opening that says the documents do not mention these names (`quoting`: before
    passages quoted as the closest, else before a refusal)."""
    quoted = ", ".join(_QUOTED[language].format(n) for n in names)
    return (NOT_MENTIONED if quoting else NOT_MENTIONED_AT_ALL)[language].format(names=quoted)


def refusal(question: str, language: str, contact: str = "") -> Answer:
    """'Not in the knowledge base', in the question's language, citing nothing; the notice says
    whom to ask when someone is known."""
    notice = ASK[language].format(contact=contact) if contact else ""
    return Answer(question, False, REFUSAL[language], [], language, notice=notice)


def contact_for(passages: list[Passage], language: str, floor: float, fallback: str) -> str:
    """Whom to ask about a question the documents do not answer: the owner of the nearest
    document when it is at least near (`floor`), else the configured contact."""
    nearest = passages[0] if passages else None
    if nearest is not None and nearest.dense >= floor and nearest.metadata.get("owner"):
        return _OWNER[language].format(owner=nearest.metadata["owner"], title=nearest.title)
    return fallback


def is_intro(passage: Passage) -> bool:
    """A short section opening (at most three sentences) whose subsections carry the substance."""
    return len(split_units(passage.text)) <= 3


def _for_language(passage: Passage, language: str, same: float, cross: float) -> float:
    """A similarity threshold: `same` for a passage in the question's language, else `cross`
    (cross-lingual similarities run lower)."""
    return same if passage.metadata.get("language", "de") == language else cross


def names_all(passage: Passage, entities: Sequence[str]) -> bool:
    """Whether the passage (with its title and section) names every entity."""
    return all(mentions(passage.content, e) for e in entities)


def about_another(passage: Passage, entities: Sequence[str]) -> bool:
    """Whether the passage is about something else of the kind the question names: its section
    heading names another tool, role or body (the FAQ entry "Darf ich Kundendaten in NordGPT
    eingeben?" for a question about ChatGPT) and the passage does not name the one asked about."""
    asked = {e.lower().removesuffix("s") for e in entities}
    other = [n for n in names(passage.section) if n.lower().removesuffix("s") not in asked]
    return bool(other) and not names_all(passage, entities)


def focus_lead(question: Question, passages: list[Passage], margin: float = 0.03) -> Passage:
    """The passage to lead with: the best one, unless

    - it is about another entity of the kind the question names (about_another) and one about
      the one named comes close (its cosine at most `margin` lower): a document whose title names
      it first, then a passage that names it;
    - the question asks for a number, a duration, a date or an address (not as a yes/no: "Kann
      der Assistent sagen, wie viele Urlaubstage ich habe?" asks whether), its best-matching
      sentences give no such value and a close passage's do ("Wie lange …?" is answered by
      "3 Jahre nach …", not by the sentence that only names the same documents).

    A passage that merely names no entity is not overruled for one that does: "Darf ich die
    Gewerkschaftszugehörigkeit in NordGPT verarbeiten?" is answered by the rules on special
    categories of data, not by the FAQ entry on getting NordGPT (on the tuning sets the ranking
    chose the right lead more often than that rule: lead .880 -> .893 German, .826 -> .836
    English)."""
    best = passages[0]
    close = [p for p in passages[:5] if p.dense >= best.dense - margin]
    if question.entities and about_another(best, question.entities):
        for about in (
            lambda p: all(mentions(p.title, e) for e in question.entities),
            lambda p: names_all(p, question.entities),
        ):
            found = [p for p in close if about(p)]
            if found:
                best, close = found[0], found
                break
    if not question.wants or question.yes_no:
        return best
    # A count must be in the sentences that answer; a period or a date anywhere in the passage
    # may be the one asked for (its best sentence may name the deadline's event instead).
    if question.wants == "count":
        answered = _gives(best, "count")
    else:
        answered = gives(question.wants, best.text)
    giving = [p for p in close if _gives(p, question.wants)]
    return giving[0] if giving and not answered else best


def _gives(passage: Passage, kind: str) -> bool:
    """Whether the passage's best-matching units give a value of that kind."""
    units = split_units(passage.text)
    matched = [units[pos].text for pos, _ in passage.matched[:2] if pos < len(units)]
    return any(gives(kind, text) for text in matched or [passage.text])


class ExtractiveAnswerer:
    """Builds a cited answer from ranked passages without a language model."""

    def __init__(self, settings: Settings, tell: Tell | None = None) -> None:
        self.settings = settings
        self.tell = tell  # tells the language of a question without function words

    def is_relevant(self, passage: Passage, language: str) -> bool:
        """Whether a passage is close enough to the question to be quoted at all (a floor)."""
        s = self.settings
        threshold = _for_language(passage, language, s.min_relevance, s.min_relevance_cross_lingual)
        return passage.dense >= threshold

    def answer(
        self,
        question: str,
        passages: list[Passage],
        subsections: Callable[[Passage], list[Passage]] | None = None,
        parts: Sequence[list[Passage]] = (),
    ) -> Answer:
        """The cited answer from ranked passages; `subsections(p)` lists a passage's children,
        `parts` the passages found for each part of a multi-part question."""
        q = analyse(question, self.tell)
        if q.small_talk:
            reply = SMALL_TALK_REPLY[q.language][q.small_talk]
            return Answer(question, True, reply, [], q.language, mode="smalltalk")
        relevant = [p for p in passages if self.is_relevant(p, q.language)]
        if not relevant:
            return refusal(question, q.language)
        chosen, see_also = self._choose(q, relevant, subsections, parts)
        question_stems = set(stems(question))
        blocks: list[str] = []
        citations: list[Citation] = []
        quoted: set[str] = set()  # overlapping chunks share lines: each is quoted once
        for passage in chosen:
            n = len(citations) + 1
            first = n == 1
            limit = min(self.settings.max_answer_units, 4) if first else 2
            lines, picked = self._quote(q, passage, n, question_stems, limit, chosen[0], quoted)
            if not picked:
                continue
            quoted.update(u.text for u in picked)
            blocks.append("\n".join(lines))
            citations.append(Citation.of(n, passage, [u.text for u in picked]))
        extra = [
            Citation.of(len(citations) + i, p, [])
            for i, p in enumerate(see_also[:MAX_SEE_ALSO], start=1)
        ]
        if extra:
            blocks.append(_see_also(extra, citations, q.language))
        text = "\n\n".join(blocks)
        if q.language == "en" and any(p.metadata.get("language", "de") != "en" for p in chosen):
            text += "\n\n" + _TRANSLATION_NOTE
        return Answer(question, True, text, citations + extra, q.language)

    def _choose(
        self,
        q: Question,
        relevant: list[Passage],
        subsections: Callable[[Passage], list[Passage]] | None,
        parts: Sequence[list[Passage]],
    ) -> tuple[list[Passage], list[Passage]]:
        """The passages quoted (lead first) and the ones only named as "see also"."""
        lead = focus_lead(q, relevant)
        children = subsections(lead) if subsections else []
        if children and is_intro(lead):
            # A short section intro: its subsections carry the answer.
            chosen = [lead] + children[: self.settings.max_subsections]
        else:
            chosen = [lead]
            for found in parts:  # each part of the question gets its best passage
                best = next((p for p in found if self.is_relevant(p, q.language)), None)
                taken = {c.id for c in chosen}
                if best is None or any(
                    p.id in taken and p.dense >= best.dense - PART_COVERED for p in found
                ):  # a passage already quoted answers this part about as well
                    continue
                chosen.append(best)
            # A passage about as close as the lead is quoted too, unless it is about another
            # tool, role or body than the question names (then it is only named below).
            for p in relevant:
                if len(chosen) >= self.settings.max_citations:
                    break
                if (
                    p.id not in {c.id for c in chosen}
                    and p.dense >= lead.dense - CLOSE_TO_LEAD
                    and not (q.entities and about_another(p, q.entities))
                ):
                    chosen.append(p)
        taken = {c.id for c in chosen}
        see_also = [p for p in relevant if p.id not in taken and _near(p, lead, 0.5)]
        return chosen, see_also

    def _quote(
        self,
        q: Question,
        passage: Passage,
        n: int,
        question_stems: set[str],
        limit: int,
        lead: Passage,
        quoted: Collection[str] = (),
    ) -> tuple[list[str], list[Unit]]:
        """The lines quoted from one passage (a lead line, then its chosen units with [n]) and
        the units they quote; none of the lines `quoted` already."""
        units = split_units(passage.text)
        # Left out by position (the matched units' positions count every unit): what an earlier
        # passage quoted, and a "Ja."/"Nein." about something else than what the question names.
        verdicts = q.entities and not names_all(passage, q.entities)
        skip = frozenset(
            i
            for i, u in enumerate(units)
            if u.text in quoted or verdicts and _BARE_VERDICT.match(u.text)
        )
        first = n == 1  # the lead quotes two units when close, a list whole when asked for one
        least = 2 if first else 1
        picked = pick_units(units, passage, q, question_stems, limit, skip, least, first)
        if not picked:
            return [], []
        if (
            n > 1
            and passage.source == lead.source
            and passage.section.startswith(lead.section + SECTION_SEPARATOR)
        ):
            head = passage.section.rsplit(SECTION_SEPARATOR, 1)[-1] + ":"
        else:
            german = q.language == "en" and passage.metadata.get("language", "de") != "en"
            template = _LEAD_GERMAN if german else _LEAD[q.language]
            head = template[0 if n == 1 else 1].format(
                title=passage.title, where=_where(passage, q.language)
            )
        return lay_out(head, units, picked, n, q.language), picked


def _see_also(extra: list[Citation], quoted: list[Citation], language: str) -> str:
    """ "Also relevant: [3] “Title” (section), …": the section named when the answer cites
    another part of the same document (three sources with one title told the reader nothing)."""
    titles = [c.title for c in quoted + extra]
    refs = []
    for c in extra:
        ref = f"[{c.n}] „{c.title}“" if language == "de" else f"[{c.n}] “{c.title}”"
        if titles.count(c.title) > 1 and c.section:
            ref += f" ({c.section.rsplit(SECTION_SEPARATOR, 1)[-1]})"
        refs.append(ref)
    return _SEE_ALSO[language].format(refs=", ".join(refs))


def _near(passage: Passage, lead: Passage, share: float) -> bool:
    """Whether a passage scores at least `share` of the lead's, the query adapter's term left
    out (search/adapter.py: it orders the passages; its cosines, far from the stored ones'
    scale, would make the shares mean nothing)."""
    return passage.score - passage.adapted >= share * (lead.score - lead.adapted)


def _where(passage: Passage, language: str) -> str:
    parts = [passage.section] if passage.section else []
    if passage.page is not None:
        parts.append(_PAGE[language].format(page=passage.page))
    return f" ({', '.join(parts)})" if parts else ""
