"""Answers as safe Markdown for the chat: document text is shown, never interpreted as HTML or links."""

from __future__ import annotations

import html
import re

from assistant.answer import Answer

_UI = {
    "de": {"sources": "Quellen", "page": "S.", "section": "Abschnitt"},
    "en": {"sources": "Sources", "page": "p.", "section": "Section"},
}


def inert(text: str) -> str:
    """Text from a document or a user as literal Markdown: HTML escaped, links and images disarmed."""
    text = html.escape(text, quote=False)
    # Escape Markdown syntax that would fetch or link something: ![alt](url), [text](url), <url>.
    text = re.sub(r"([!\[\]()`*_~|])", r"\\\1", text)
    return text


def answer_markdown(answer: Answer) -> str:
    """The answer with [n] markers, followed by one collapsible card per source."""
    labels = _UI.get(answer.language, _UI["de"])
    # The answer is quoted document text plus our own lead lines: escape all of it, then
    # restore the [n] markers as plain bracketed numbers.
    body = inert(answer.answer)
    body = re.sub(r"\\\[(\d+)\\\]", r"**[\1]**", body)
    if not answer.citations:
        return body
    cards = []
    for c in answer.citations:
        where = " › ".join(x for x in (c.title, c.section) if x)
        page = f", {labels['page']} {c.page}" if c.page is not None else ""
        passage = inert(c.text).replace("\n", "<br>")
        cards.append(
            f"<details><summary>[{c.n}] {inert(where)}{page}</summary>\n\n"
            f"<small>{inert(c.source)}</small>\n\n{passage}\n\n</details>"
        )
    return f"{body}\n\n**{labels['sources']}**\n\n" + "\n".join(cards)
