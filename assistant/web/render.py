"""Answers as safe HTML/Markdown for the chat: document and user text is shown, never interpreted.

Everything that comes from a document or a user goes through `html.escape` (tags become text) and,
where Markdown is rendered, through `inert` (no links, images or emphasis can be smuggled in). Only
the markup this module writes itself (markers, cards, highlights) is live.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from urllib.parse import quote

from assistant.answer import Answer, Citation
from assistant.chunking import SECTION_SEPARATOR

TEXT = {
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


def file_url(citation: Citation, base: str = "") -> str:
    """Link to the cited document; PDFs open at the cited page."""
    url = f"{base}/files/{quote(citation.source)}"
    if citation.page is not None and citation.source.lower().endswith(".pdf"):
        url += f"#page={citation.page}"
    return url


def _highlight(passage: str, quoted: list[str]) -> str:
    """The passage as HTML with the quoted sentences marked."""
    escaped = inert(passage)
    for sentence in sorted(set(quoted), key=len, reverse=True):
        target = inert(sentence)
        if target and target in escaped:
            escaped = escaped.replace(target, f"<mark>{target}</mark>", 1)
    return escaped.replace("\n", "<br>")


def answer_html(
    answer: Answer, base: str = "", link: Callable[[Citation, str], str] = file_url
) -> str:
    """The answer with [n] markers linking to their source, then one expandable card per source."""
    text = TEXT.get(answer.language, TEXT["de"])
    urls = {c.n: link(c, base) for c in answer.citations}
    lines = []
    for line in answer.answer.split("\n"):
        bullet = line.startswith("- ")
        body = inert(line[2:] if bullet else line)

        def marker(match: re.Match) -> str:
            n = int(match.group(1))
            if n not in urls:
                return match.group(0)
            return (
                f'<a class="cite" href="{html.escape(urls[n])}" target="_blank" '
                f'rel="noopener noreferrer" title="{text["sources"]} {n}">[{n}]</a>'
            )

        body = re.sub(r"&#91;(\d+)&#93;", marker, body)
        lines.append(f"- {body}" if bullet else body)
    markdown = "\n".join(lines)
    if answer.notice:
        markdown += f'\n\n<div class="notice">{inert(answer.notice)}</div>'
    mode = text["mode"].get(answer.mode, answer.mode)
    markdown += f'\n\n<div class="answer-mode mode-{html.escape(answer.mode)}">{inert(mode)}</div>'
    if not answer.citations:
        return markdown
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
            f'<details class="source-card" id="source-{c.n}"><summary><b>[{c.n}]</b> '
            f"{inert(where)}{page}{badge}</summary>"
            f'<div class="passage">{_highlight(c.text, c.quoted)}</div>'
            f'<div class="source-meta">{html.escape(c.source)} · '
            f'<a href="{html.escape(urls[c.n])}" target="_blank" rel="noopener noreferrer">'
            f"{html.escape(open_label)}</a></div></details>"
        )
    return f"{markdown}\n\n**{text['sources']}**\n\n" + "\n".join(cards)
