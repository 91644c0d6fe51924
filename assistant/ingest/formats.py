"""The loaders, one per format: each turns a file into metadata plus Markdown per page (headings
`#` = document title, `##` = section, ...), so chunking has a single, structure-aware path. PDFs keep
one text per page so that page numbers travel with every chunk; HTML and DOCX tables become
Markdown tables."""

from __future__ import annotations

import re
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bs4 import Tag
    from pypdf import PdfReader

from assistant.ingest.metadata import (
    DocumentError,
    clean_metadata,
    decode_text,
    split_front_matter,
)
from assistant.ingest.tables import layout_text, same_words, table_lines

# --- plain text and PDF: numbered headings ----------------------------------------------------

# "2.1 Phase 1: Idee" or "3 Grundsätze": short, capitalised, no sentence punctuation at the end.
_NUMBERED_HEADING = re.compile(r"^(\d{1,2}(?:\.\d{1,2}){0,3})\.?\s+([A-ZÄÖÜ][^\n]{0,90})$")


def _heading_level(line: str) -> tuple[int, str] | None:
    match = _NUMBERED_HEADING.match(line.strip())
    if not match or line.rstrip().endswith((".", ",", ";", ":")) or len(line.split()) > 12:
        return None
    depth = match.group(1).count(".") + 1
    return depth + 1, line.strip()  # level 1 (#) is the document title


def _numbered_to_markdown(text: str) -> str:
    """Turn numbered heading lines and setext underlines into Markdown headings; keep the rest."""
    lines = text.splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if re.fullmatch(r"[=\-]{3,}", stripped) and out and out[-1].strip():
            level = 2 if stripped[0] == "=" else 3
            out[-1] = "#" * level + " " + out[-1].strip()
            continue
        heading = _heading_level(line)
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if heading and not re.fullmatch(r"[=\-]{3,}", nxt):
            level, title = heading
            out.extend(["", "#" * level + " " + title, ""])
        else:
            out.append(re.sub(r"^\s*[•·▪●◦]\s*", "- ", line))
    return "\n".join(out)


def _load_text(path: Path, max_bytes: int) -> tuple[dict[str, str], list[tuple[int | None, str]]]:
    meta, body = split_front_matter(decode_text(path.read_bytes(), path.name))
    if "title" in meta and not body.lstrip().startswith("#"):
        body = f"# {meta['title']}\n\n{_numbered_to_markdown(body)}"
    else:
        body = _numbered_to_markdown(body)
    return meta, [(None, body)]


def _load_markdown(
    path: Path, max_bytes: int
) -> tuple[dict[str, str], list[tuple[int | None, str]]]:
    meta, body = split_front_matter(decode_text(path.read_bytes(), path.name))
    return meta, [(None, body)]


_PAGE_NUMBER_LINE = re.compile(r"^(seite|page|s\.)?\s*\d+\s*((von|of|/)\s*\d+)?$", re.I)


def _strip_running_lines(pages: list[str]) -> list[str]:
    """Drop headers/footers: lines that recur on most pages (digits ignored) and bare page numbers."""

    def key(line: str) -> str:
        return re.sub(r"\d+", "#", line.strip().lower())

    counts = Counter(k for page in pages for k in {key(line) for line in page.splitlines()})
    threshold = max(2, int(0.6 * len(pages) + 0.5))
    cleaned = []
    for page in pages:
        kept = [
            line
            for line in page.splitlines()
            if not (len(pages) >= 2 and counts[key(line)] >= threshold and line.strip())
            and not _PAGE_NUMBER_LINE.match(line.strip())
        ]
        cleaned.append("\n".join(kept))
    return cleaned


# pypdf's limits on what one stream may decompress to; the file size limit applies to each.
_PDF_OUTPUT_LIMITS = (
    "zlib_maximum_output_length",
    "lzw_maximum_output_length",
    "run_length_maximum_output_length",
    "brotli_maximum_output_length",
    "array_based_stream_maximum_output_length",
)


def _load_pdf(path: Path, max_bytes: int) -> tuple[dict[str, str], list[tuple[int | None, str]]]:
    from pypdf import PdfReader, apply_configuration

    try:
        limits: dict = dict.fromkeys(_PDF_OUTPUT_LIMITS, max_bytes)
        with apply_configuration(**limits):
            reader = PdfReader(path, strict=False)
            if reader.is_encrypted and not reader.decrypt(""):
                raise DocumentError(
                    "PDF is encrypted (password protected); upload an unprotected copy"
                )
            raw_pages = _pdf_page_texts(reader, max_bytes)
            info: dict = dict(reader.metadata or {})
    except (DocumentError, OSError):  # OSError: the file itself is unreadable
        raise
    except Exception as exc:  # pypdf raises many types on damaged files
        raise DocumentError(_pdf_failure(exc, max_bytes)) from exc
    meta = {}
    if info.get("/Title"):
        meta["title"] = str(info["/Title"]).strip()
    if info.get("/Author"):
        meta["owner"] = str(info["/Author"]).strip()
    pages: list[tuple[int | None, str]] = []
    for number, text in enumerate(_strip_running_lines(raw_pages), start=1):
        pages.append((number, _numbered_to_markdown(_reflow(text))))
    return meta, pages


def _pdf_page_texts(reader: PdfReader, max_chars: int) -> list[str]:
    """The text of every page; refused once it adds up to more than the file size limit.

    Each stream is capped by pypdf's limits, but many pages just under the cap could still add up
    to gigabytes of text.
    """
    texts: list[str] = []
    total = 0
    for page in reader.pages:
        texts.append(_page_text(page))
        total += len(texts[-1])
        if total > max_chars:
            raise DocumentError(
                f"PDF text inflates beyond {max_chars / 1e6:.1f} MB, the file size limit "
                "(ASSISTANT_MAX_FILE_MB); refused as a possible decompression bomb"
            )
    return texts


def _page_text(page) -> str:
    """The page's text, with its tables as Markdown rows (tables.py) where pypdf's layout
    extraction holds the same words as its plain one: the layout mode skips some content (a
    form that draws itself) and fails silently where the plain one reports a broken file."""
    plain = page.extract_text() or ""
    try:
        layout = layout_text(page.extract_text(extraction_mode="layout") or "")
    except Exception:  # noqa: BLE001 (the plain text stands)
        return plain
    return layout if same_words(plain, layout) else plain


def _pdf_failure(exc: Exception, max_bytes: int) -> str:
    """A readable reason for what pypdf raised; its limit and cycle errors share generic types."""
    from pypdf.errors import LimitReachedError, PdfReadError

    message = str(exc)
    if isinstance(exc, LimitReachedError) and message.startswith("Limit reached while decompress"):
        return (
            f"PDF stream inflates beyond {max_bytes / 1e6:.1f} MB, the file size limit "
            "(ASSISTANT_MAX_FILE_MB); refused as a possible decompression bomb"
        )
    if isinstance(exc, RecursionError) or re.search(r"cycl|loop|recursion", message, re.I):
        return f"PDF has circular object references ({message}); save it anew as PDF"
    if isinstance(exc, LimitReachedError):
        return f"PDF exceeds a safety limit of the PDF reader: {message}"
    if isinstance(exc, PdfReadError):
        return f"corrupt or unreadable PDF: {message}"
    return f"corrupt or unreadable PDF: {type(exc).__name__}: {message}"


_LABEL_START = re.compile(r"^\s*[A-ZÄÖÜ][\w .()/-]{1,40}: \S")
_BULLET_START = re.compile(r"^\s*([-•·▪●◦*]|\d{1,2}[.)])\s+")


def _reflow(text: str) -> str:
    """Join the lines a PDF wrapped at the page width back into sentences and bullets.

    A line continues the previous one when the previous line ran (almost) to the full width
    without ending a sentence, or when it starts in lower case; headings and bullets start anew.
    """
    lines = [line.rstrip() for line in text.splitlines()]
    width = max((len(line) for line in lines), default=0)
    out: list[str] = []
    for line in lines:
        prev = out[-1] if out else ""
        starts_new = (
            not line.strip()
            or not prev.strip()
            or line.startswith("|")  # a table row (tables.py) is a line of its own
            or prev.startswith("|")
            or _BULLET_START.match(line)
            or _heading_level(line)
            or _heading_level(prev)
        )
        wrapped = len(prev) >= 0.75 * width and not prev.endswith((".", "!", "?", ":"))
        labelled = _LABEL_START.match(line)  # "NordGPT: Chatverläufe …" rows of a table or list
        if not starts_new and not labelled and (wrapped or line.lstrip()[:1].islower()):
            out[-1] = f"{prev} {line.strip()}"
        else:
            out.append(line)
    return "\n".join(out)


# --- HTML -------------------------------------------------------------------------------------

_HTML_BLOCKS = [
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "p",
    "li",
    "tr",
    "pre",
    "dt",
    "dd",
    "blockquote",
]


def _load_html(path: Path, max_bytes: int) -> tuple[dict[str, str], list[tuple[int | None, str]]]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(decode_text(path.read_bytes(), path.name), "html.parser")
    raw = {
        str(tag.get("name", "")).lower(): str(tag.get("content", ""))
        for tag in soup.find_all("meta")
        if tag.get("name")
    }
    meta = clean_metadata(raw, "HTML <meta> tags")
    # Intranet exports suffix <title> with the site name ("… – NordNet"); the page's own <h1>
    # is the document title, <title> only the fallback.
    h1 = soup.find("h1")
    if h1 and h1.get_text(strip=True):
        meta.setdefault("title", " ".join(h1.get_text(" ", strip=True).split()))
    elif soup.title and soup.title.get_text(strip=True):
        meta.setdefault("title", soup.title.get_text(strip=True))
    if soup.html and soup.html.get("lang"):
        meta.setdefault("language", str(soup.html["lang"]).split("-")[0].lower())
    for tag in soup(
        ["script", "style", "noscript", "template", "nav", "header", "footer", "aside"]
    ):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    lines: list[str] = []
    rows: list[list[str]] = []  # the table being read
    for element in _outer_blocks(root):
        text = " ".join(element.get_text(" ", strip=True).split())
        if not text:
            continue
        name = element.name
        if name == "tr":
            rows.append(
                [
                    " ".join(c.get_text(" ", strip=True).split())
                    for c in element.find_all(["td", "th"])
                ]
            )
            continue
        lines.extend(table_lines(rows))
        rows = []
        if name[0] == "h" and name[1:].isdigit():
            lines.extend(["", "#" * int(name[1:]) + " " + text, ""])
        elif name == "li":
            lines.append("- " + text)
        else:
            lines.extend([text, ""])
    lines.extend(table_lines(rows))
    return meta, [(None, "\n".join(lines))]


def _outer_blocks(root: Tag) -> Iterator[Tag]:
    """The block elements under `root` that no other block encloses (an inner block's text is
    part of its enclosing one's), in document order: one walk, not one walk up per block (a
    page of 2,000 nested elements took a minute that way)."""
    from bs4 import Tag

    stack = list(reversed([c for c in root.children if isinstance(c, Tag)]))
    while stack:
        element = stack.pop()
        if element.name in _HTML_BLOCKS:
            yield element
        else:
            stack.extend(reversed([c for c in element.children if isinstance(c, Tag)]))


# --- DOCX -------------------------------------------------------------------------------------


def _check_inflated_size(path: Path, max_bytes: int) -> None:
    """Refuse a DOCX (a zip) whose parts unpack to more than the file size limit: python-docx
    reads every part into memory. zipfile never unpacks more than a part's declared size."""
    try:
        with zipfile.ZipFile(path) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise DocumentError(f"corrupt or unreadable DOCX: {exc}") from exc
    if inflated > max_bytes:
        raise DocumentError(
            f"DOCX inflates to {inflated / 1e6:.1f} MB, above the limit of "
            f"{max_bytes / 1e6:.1f} MB (ASSISTANT_MAX_FILE_MB); refused as a possible zip bomb"
        )


def _load_docx(path: Path, max_bytes: int) -> tuple[dict[str, str], list[tuple[int | None, str]]]:
    from lxml.etree import XMLSyntaxError

    _check_inflated_size(path, max_bytes)
    try:  # python-docx parses each XML part when it is first read (styles: at the first style)
        return _read_docx(path)
    except (zipfile.BadZipFile, KeyError, ValueError, XMLSyntaxError) as exc:
        raise DocumentError(f"corrupt or unreadable DOCX: {exc}".splitlines()[0]) from exc


def _read_docx(path: Path) -> tuple[dict[str, str], list[tuple[int | None, str]]]:
    from docx import Document as open_docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    doc = open_docx(str(path))
    props = doc.core_properties
    meta = clean_metadata(
        {"title": props.title, "owner": props.author, "language": props.language}, "DOCX properties"
    )
    lines: list[str] = []
    for block in doc.iter_inner_content():
        if isinstance(block, Table):
            rows = []
            for row in block.rows:
                cells: list[str] = []
                for cell in row.cells:
                    text = " ".join(cell.text.split())
                    if not cells or cells[-1] != text:  # merged cells repeat
                        cells.append(text)
                rows.append(cells)
            lines.extend(table_lines(rows))
            continue
        assert isinstance(block, Paragraph)
        text = " ".join(block.text.split())
        if not text:
            continue
        style = (block.style.name if block.style is not None else "").lower()
        level = re.fullmatch(r"heading (\d)", style)
        if style == "title":
            lines.extend(["# " + text, ""])
        elif level:
            lines.extend(["", "#" * (int(level.group(1)) + 1) + " " + text, ""])
        elif (
            style.startswith("list") or block._p.pPr is not None and block._p.pPr.numPr is not None
        ):
            lines.append("- " + text)
        else:
            lines.extend([text, ""])
    return meta, [(None, "\n".join(lines))]


# suffix -> (format name stored on every chunk, loader). Every loader gets the file size limit;
# PDF and DOCX, being compressed, also apply it to what they unpack to.
LOADERS = {
    ".pdf": ("pdf", _load_pdf),
    ".md": ("markdown", _load_markdown),
    ".markdown": ("markdown", _load_markdown),
    ".txt": ("text", _load_text),
    ".html": ("html", _load_html),
    ".htm": ("html", _load_html),
    ".docx": ("docx", _load_docx),
}


def supported_suffixes() -> frozenset[str]:
    """File endings the loaders read (lower case, with the dot)."""
    return frozenset(LOADERS)
