"""A readable view of a cited document: its text as HTML, the cited passage marked and scrolled to.

Markdown, text, HTML and DOCX documents are shown as the loaders read them (front matter and
sidecars are metadata, not text), rendered with markdown-it with raw HTML off: whatever a
document contains is shown, never run. The page carries no script; the browser scrolls to the
first mark through the URL fragment (#cited).
"""

from __future__ import annotations

import html
import re

from markdown_it import MarkdownIt

from assistant.ingest.documents import SourceDocument

_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
TEXT = {
    "de": {
        "page": "Seite",
        "cited": "Zitierte Stelle",
        "owner": "Verantwortlich",
        "back": "Zurück",
    },
    "en": {"page": "Page", "cited": "Cited passage", "owner": "Owner", "back": "Back"},
}
_PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:50rem;margin:1.5rem auto;padding:0 1rem;
line-height:1.55;color:#1f2937}}
header{{border-bottom:1px solid #e5e7eb;margin-bottom:1rem}} .meta{{color:#6b7280;font-size:.9em}}
mark{{background:#fde68a;padding:0 2px;scroll-margin-top:4rem}}
table{{border-collapse:collapse;margin:.8rem 0}} td,th{{border:1px solid #d1d5db;padding:4px 8px;
text-align:left;vertical-align:top}} th{{background:#f3f4f6}}
.page-break{{color:#9ca3af;font-size:.8em;border-top:1px dashed #d1d5db;margin:1.2rem 0 .4rem}}
</style></head><body>
<header><h1>{title}</h1><p class="meta">{meta}</p></header>
<main>{body}</main></body></html>"""


def render_document(doc: SourceDocument, cited: list[str], language: str = "de") -> str:
    """The document as a page of HTML, each of the `cited` texts marked (the first one has the
    id `cited`, the target of the link from the answer)."""
    text = TEXT.get(language, TEXT["de"])
    parts = []
    for page, markdown in doc.pages:
        if page is not None and len(doc.pages) > 1:
            parts.append(f'<div class="page-break">{text["page"]} {page}</div>')
        parts.append(_MARKDOWN.render(_drop_title(markdown, doc.title)))
    body = mark("\n".join(parts), cited)
    meta = " · ".join(
        html.escape(str(value))
        for value in (
            doc.metadata.get("owner") and f"{text['owner']}: {doc.metadata['owner']}",
            doc.metadata.get("version") and f"Version {doc.metadata['version']}",
            doc.metadata.get("effective_date"),
        )
        if value
    )
    return _PAGE.format(
        lang=html.escape(language), title=html.escape(doc.title), meta=meta, body=body
    )


def mark(rendered: str, cited: list[str]) -> str:
    """Wrap the first occurrence of each cited text (as rendered: escaped) in <mark>; the first
    mark in the page gets id="cited". Texts with inline markup in the source are not found and
    stay unmarked rather than breaking the page."""
    for text in sorted({c.strip() for c in cited if c.strip()}, key=len, reverse=True):
        target = html.escape(text, quote=False)
        index = rendered.find(target)
        if index >= 0:
            rendered = f"{rendered[:index]}<mark>{target}</mark>{rendered[index + len(target) :]}"
    return rendered.replace("<mark>", '<mark id="cited">', 1)


def _drop_title(markdown: str, title: str) -> str:
    """The page's text without a first-level heading that only repeats the title (shown above)."""
    return re.sub(
        rf"^#\s+{re.escape(title)}\s*$", "", markdown, count=1, flags=re.MULTILINE
    ).strip()
