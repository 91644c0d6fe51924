"""Answers as safe HTML/Markdown for the chat: document and user text is shown, never interpreted.

Everything that comes from a document or a user goes through `html.escape` (tags become text) and,
where Markdown is rendered, through `inert` (no links, images or emphasis can be smuggled in). Only
the markup this module writes itself (markers, cards, highlights) is live.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from assistant.answering.answer import Answer, Citation
from assistant.ingest.chunking import SECTION_SEPARATOR

TEXT: dict[str, dict[str, Any]] = {
    "de": {
        "sources": "Quellen",
        "page": "S.",
        "open": "Dokument öffnen",
        "open_page": "Dokument auf S. {page} öffnen",
        "mode": {
            "extractive": "Zitate aus den Dokumenten",
            "llm": "Formuliert vom Sprachmodell, Belege geprüft",
            "fallback": "Zitate aus den Dokumenten (Sprachmodell nicht genutzt)",
        },
        "status": {
            "expired": "abgelaufen",
            "superseded": "ersetzt",
            "pending": "noch nicht gültig",
        },
    },
    "en": {
        "sources": "Sources",
        "page": "p.",
        "open": "Open document",
        "open_page": "Open document at p. {page}",
        "mode": {
            "extractive": "Quoted from the documents",
            "llm": "Worded by the language model, citations checked",
            "fallback": "Quoted from the documents (language model not used)",
        },
        "status": {"expired": "expired", "superseded": "superseded", "pending": "not yet valid"},
    },
}

_MD_SPECIAL = re.compile(r"[\\`*_{}\[\]()#+!|~<>:]")


def inert(text: str) -> str:
    """User or document text as literal text in Markdown or HTML: tags escaped, and every
    character Markdown could read as syntax (links, images, emphasis, autolinks) written as a
    numeric entity, which renders as itself in either context."""
    return _MD_SPECIAL.sub(lambda m: f"&#{ord(m.group(0))};", html.escape(text, quote=False))


def file_url(citation: Citation, base: str = "", language: str = "de") -> str:
    """Link to the cited document: a PDF as the file at the cited page, any other format as the
    readable view with the cited passage marked (#cited)."""
    if citation.source.lower().endswith(".pdf"):
        url = f"{base}/files/{quote(citation.source)}"
        return f"{url}#page={citation.page}" if citation.page is not None else url
    query = urlencode({"c": citation.chunk_id, "lang": language} if citation.chunk_id else {})
    return f"{base}/view/{quote(citation.source)}" + (f"?{query}" if query else "") + "#cited"


def _table_line(line: str, marker: Callable[[str], str]) -> str:
    """A Markdown table row of the answer: each cell inert, the pipes and [n] markers live."""
    if re.fullmatch(r"\|(-+\|)+", line):
        return line
    cells = [marker(inert(c.strip())) for c in line.strip().strip("|").split("|")]
    return "| " + " | ".join(cells) + " |"


def _passage_html(passage: str, quoted: list[str]) -> str:
    """A source card's passage as HTML: tables as tables, the quoted units marked."""
    out: list[str] = []
    rows: list[list[str]] = []

    def flush() -> None:
        if rows:
            head, *body = rows
            cells = "".join(f"<th>{_highlight(c, quoted)}</th>" for c in head)
            out.append(f'<table class="passage-table"><tr>{cells}</tr>')
            for row in body:
                out.append(
                    "<tr>" + "".join(f"<td>{_highlight(c, quoted)}</td>" for c in row) + "</tr>"
                )
            out.append("</table>")
            rows.clear()

    for line in passage.split("\n"):
        stripped = line.strip()
        if stripped.startswith("|"):
            if not re.fullmatch(r"\|[\s|:-]+\|?", stripped):
                rows.append([c.strip() for c in stripped.strip("|").split("|")])
            continue
        flush()
        out.append(_highlight(line, quoted) + "<br>")
    flush()
    return "".join(out)


def _highlight(text: str, quoted: list[str]) -> str:
    """Text as inert HTML with the quoted units marked (a quoted table row marks its cells)."""
    escaped = inert(text)
    targets = {q for unit in quoted for q in [unit, *unit.split(" | ")] if q.strip()}
    for sentence in sorted(targets, key=len, reverse=True):
        target = inert(sentence)
        if target and target in escaped and f"<mark>{target}" not in escaped:
            escaped = escaped.replace(target, f"<mark>{target}</mark>", 1)
    return escaped


# Long: the answer, its notice and its source cards, in the order the reader sees them.
def answer_html(
    answer: Answer,
    base: str = "",
    link: Callable[[Citation, str, str], str] = file_url,
) -> str:
    """The answer with [n] markers that open source card n below it, then one expandable card
    per source with a link to the document (`link(citation, base, language)`)."""
    text = TEXT.get(answer.language, TEXT["de"])
    urls = {c.n: link(c, base, answer.language) for c in answer.citations}
    # Card ids unique in a chat that shows many answers.
    key = hashlib.sha1(f"{answer.question}\n{answer.answer}".encode()).hexdigest()[:8]

    def marker(body: str) -> str:
        def one(match: re.Match) -> str:
            n = int(match.group(1))
            if n not in urls:
                return match.group(0)
            card = f"a{key}-source-{n}"
            return (
                f'<a class="cite" href="#{card}" data-card="{card}" '
                f'title="{text["sources"]} {n}">[{n}]</a>'
            )

        return re.sub(r"&#91;(\d+)&#93;", one, body)

    lines = []
    for line in answer.answer.split("\n"):
        if line.startswith("|"):
            lines.append(_table_line(line, marker))
            continue
        bullet = line.startswith("- ")
        body = marker(inert(line[2:] if bullet else line))
        lines.append(f"- {body}" if bullet else body)
    markdown = "\n".join(lines)
    if answer.notice:
        markdown += f'\n\n<div class="notice">{inert(answer.notice)}</div>'
    if not answer.citations:  # a refusal or a greeting quotes nothing: no "quoted" label
        return markdown
    mode = text["mode"].get(answer.mode, answer.mode)
    markdown += f'\n\n<div class="answer-mode mode-{html.escape(answer.mode)}">{inert(mode)}</div>'
    cards = []
    for c in answer.citations:
        where = " › ".join(x for x in (c.title, c.section.replace(SECTION_SEPARATOR, " › ")) if x)
        page = f", {text['page']} {c.page}" if c.page is not None else ""
        open_label = text["open_page"].format(page=c.page) if c.page is not None else text["open"]
        status = text["status"].get(c.status, "")
        badge = (
            f' <span class="outdated status-{html.escape(c.status)}">{html.escape(status)}</span>'
            if status
            else ""
        )
        # One line of HTML per card: Markdown leaves an HTML block without blank lines alone.
        cards.append(
            f'<details class="source-card" id="a{key}-source-{c.n}"><summary><b>[{c.n}]</b> '
            f"{inert(where)}{page}{badge}</summary>"
            f'<div class="passage">{_passage_html(c.text, c.quoted)}</div>'
            f'<div class="source-meta">{html.escape(c.source)} · '
            f'<a class="open-document" href="{html.escape(urls[c.n])}" target="_blank" '
            f'rel="noopener noreferrer">{html.escape(open_label)}</a></div></details>'
        )
    return f"{markdown}\n\n**{text['sources']}**\n\n" + "\n".join(cards)
