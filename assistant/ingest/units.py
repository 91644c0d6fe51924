"""A passage as the units an answer quotes and the index searches: sentences, bullets, table rows.

One splitter serves both: the ingest embeds every unit (with its heading path) so a question finds
the sentence that answers it, and the answer quotes whole units, never half a line. A bullet, a
table row and a line of labelled facts ("Gültig ab: … · Version 1.1 · …", split at the dots) stay
whole; paragraphs are split into sentences, where a date, an ordinal or an abbreviation ("1. März",
"z. B.", "Abs. 3") ends none. Each unit knows its block (the list, table or paragraph it belongs
to), so an answer can keep a list whole or say how much of it it left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-ZÄÖÜ0-9„\"(])")
# A period that ends no sentence: a day or ordinal ("am 1. März", "die 2. Stufe") or an
# abbreviation ("z. B. Kundendaten", "Dr. Albers", "Abs. 3").
_NO_SENTENCE_END = re.compile(
    r"(?:^|[\s(])(?:\d{1,3}|[a-zA-Z]|z\.\s?B|d\.\s?h|u\.\s?a|Dr|Prof|Nr|Abs|Art|bzw|ca|vgl|"
    r"ggf|evtl|inkl|usw|etc|Mio|Mrd|Tel|e\.\s?g|i\.\s?e|Mr|Mrs|Ms|St|No|Fig|approx|incl|vs)\.$"
)
_BULLET = re.compile(r"^([-*•]|\d{1,2}[.)])\s+")
_WORDS = re.compile(r"[^\W\d_]+")
MIN_WORDS = 4  # a sentence or fact line with fewer words and no figure is page furniture
_CAPTION = re.compile(
    r"^\W*(grafik|abbildung|abb\.|bild|quelle|foto|figure|fig\.|image|source|photo)\s*\d*\s*:",
    re.IGNORECASE,
)
# A navigation link left from a web page: "< Zurück zur Übersicht: …", "« Back to the overview".
_NAVIGATION = re.compile(r"^\s*([<«‹←]|&lt;)\s*\w+", re.IGNORECASE)
_FACTS = re.compile(r"\s+·\s+")  # "Gültig ab: 1. Mai · Version 2 · Verantwortlich: …"
# A labelled line ("Gültig ab: …", "NordGPT: 90 Tage …", "Vertretung: Malte Sievers"): its own unit.
_LABEL = re.compile(r"^[^\W\d_][\w ()/&+-]{0,40}:\s")
# The line over a web article's or a document's table of contents.
_CONTENTS = re.compile(
    r"^\W*(inhalt|inhaltsverzeichnis|inhalte dieser seite|auf dieser seite|in diesem artikel|"
    r"contents|table of contents|on this page|in this article)\W*$",
    re.IGNORECASE,
)
# A figure's title: at most ten words, no full stop, colon, figure, address or heading path
# ("Die wichtigsten CAIO-Kompetenzen", "CAIO-Wirkung im Verlauf der KI-Integration").
_FIGURE_TITLE = re.compile(r"^(?=(?:\S+\s+){0,9}\S+$)[^\d:·@|>]*[^\W\d_)]$")
WRAPPED_FROM = 40  # a line this long that ends mid-sentence was wrapped, not ended
# No sentence, bullet or heading ends with an article, a preposition or a conjunction: a line
# that does ("… Data Protection Agreement über den" / "Microsoft-Rahmenvertrag.") was wrapped.
_DANGLING = re.compile(
    r"\b(der|die|das|den|dem|des|ein|eine|einen|einem|einer|eines|und|oder|sowie|mit|zu|zum|"
    r"zur|von|vom|für|über|unter|im|am|auf|bei|nach|aus|gegen|ohne|the|of|and|or|to|with|for|"
    r"from)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Unit:
    """One quotable piece of a passage."""

    text: str
    kind: str  # sentence | bullet | row | fact
    block: int  # the paragraph, list or table it belongs to (counted in reading order)
    contents: bool = False  # an entry of a table of contents (the list after "Inhalt")
    figure: bool = False  # a figure's title (see split_units)

    @property
    def listed(self) -> bool:
        """Part of a list or table (kept whole, or its omissions counted)."""
        return self.kind in ("bullet", "row")

    @property
    def furniture(self) -> bool:
        """A line that states nothing: a company name or a document kind under a title
        ("Nordwerk Logistik GmbH", "Rollenprofil für Führungsfunktionen"). Under its heading
        path such a line embeds as the title itself and would match every question about the
        document; it is neither searched nor quoted. Nor is a figure's caption or source line
        ("Grafik: …", "Quelle: …"), or a web page's navigation link ("< Zurück zur Übersicht").
        Nor is an entry of a table of contents: it names a section, and the section is there,
        nor a figure's title ("CAIO-Wirkung im Verlauf der KI-Integration" over "Quelle: …").
        A short line with a figure ("Version 1.1"),
        a sentence ("Ja.") or an item of a list is content."""
        if (
            self.contents
            or self.figure
            or _CAPTION.match(self.text)
            or _NAVIGATION.match(self.text)
        ):
            return True
        return (
            self.kind in ("sentence", "fact")
            and len(_WORDS.findall(self.text)) < MIN_WORDS
            and not re.search(r"[\d@:]", self.text)  # "Datenschutzbeauftragte: Anke Reimers"
            and not self.text.rstrip().endswith((".", "!", "?"))
        )


def split_units(text: str) -> list[Unit]:
    """The units of a passage, in reading order. A short line of its own that ends without a
    full stop and stands over a caption ("Quelle: …", "Grafik: …") or at the passage's end, where
    a web page's figure stood, is the figure's title: page furniture, not content."""
    units: list[Unit] = []
    block, previous_kind = -1, ""
    contents = False  # in the list a "Inhalt" / "Contents" line announces
    lines = unwrap(text.splitlines())
    following: list[str] = []  # the next line with text after each line (reversed)
    after = ""
    for line in reversed(lines):
        following.append(after)
        after = line or after
    for line, after in zip(lines, reversed(following), strict=True):
        if not line:
            previous_kind = ""  # a blank line ends a list or table
            continue
        if _CONTENTS.match(line):
            contents = True
            continue
        contents = contents and bool(_BULLET.match(line)) and previous_kind in ("", "bullet")
        if _is_row(line):
            kind, pieces = "row", [_table_row(line)]
        elif _BULLET.match(line):
            kind, pieces = "bullet", [_BULLET.sub("", line)]
        elif _FACTS.search(line):
            kind, pieces = "fact", [p for p in _FACTS.split(line) if p]
        else:
            kind, pieces = "sentence", split_sentences(line)
        if not (kind in ("bullet", "row") and kind == previous_kind):
            block += 1
        previous_kind = kind
        figure = (
            kind == "sentence"
            and _FIGURE_TITLE.match(line)
            and (not after or _CAPTION.match(after))
        )
        units.extend(
            Unit(piece, kind, block, contents, bool(figure))
            for piece in pieces
            if piece and _is_content(piece)
        )
    return units


def unwrap(lines: list[str]) -> list[str]:
    """The lines of a passage with hard-wrapped prose joined again (a text file, a Markdown
    paragraph or a PDF page wrapped at a fixed width: "… ist laut" / "Rollenprofil zunächst …").
    A line continues the one before when that one is long prose ending mid-sentence (no . ! ? : ;)
    and this one is prose too, neither a list item, a table row, a labelled line nor a new label's
    value; a title in capitals ends its line. Blank lines stay (they end lists and tables)."""
    joined: list[str] = []
    for raw in lines:
        line = raw.strip()
        previous = joined[-1] if joined else ""
        if line and previous and _continues(previous, line, indented=raw[:1].isspace()):
            joined[-1] = f"{previous} {line}"
        else:
            joined.append(line)
    return joined


def _continues(previous: str, line: str, indented: bool) -> bool:
    dangling = _DANGLING.search(previous) is not None
    if previous.endswith((".", "!", "?", ":", ";")):
        return False
    if len(previous) < WRAPPED_FROM and not dangling:
        return False
    if previous.isupper() or _is_row(previous) or _is_row(line) or _BULLET.match(line):
        return False
    if _FACTS.search(line) or _LABEL.match(line):
        return False
    if _BULLET.match(previous):  # a list item goes on on an indented line, or after "über den"
        return indented or dangling
    # After a labelled line only a lower-case continuation belongs to it ("(pseudonymisiert) …"),
    # or the rest of a phrase it broke off.
    return not _LABEL.match(previous) or not line[0].isupper() or dangling


def _is_row(line: str) -> bool:
    return line.startswith("|") or " | " in line and not _BULLET.match(line)


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


def _table_row(line: str) -> str:
    """A Markdown table row as its cells joined with " | " (no outer pipes)."""
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    return " | ".join(c for c in cells if c)


def _is_content(text: str) -> bool:
    """Not a Markdown table rule (|---|---|) or a lone page number."""
    return bool(re.search(r"[^\W\d_]", text))
