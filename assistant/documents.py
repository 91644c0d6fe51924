"""Load corpus files (PDF, Markdown, text, HTML, DOCX) into one shape: metadata plus Markdown per page.

Every format is turned into Markdown headings (`#` = document title, `##` = section, ...) so that
chunking has a single, structure-aware path. PDFs keep one text per page so that page numbers travel
with every chunk. Metadata comes from the file itself (front matter, <meta> tags, document
properties) and from an optional sidecar `<file>.meta.yaml`, which wins.
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from pypdf import PdfReader

SIDECAR_SUFFIX = ".meta.yaml"
# Metadata keys a document may declare; anything else in front matter is ignored.
METADATA_KEYS = (
    "title",
    "owner",
    "effective_date",
    "expiry_date",
    "version",
    "document_id",  # versions of one document share it (else they share the title)
    "audience",
    "language",
    "doc_type",
    "source_publisher",
)
# Longest metadata value: metadata is copied onto every chunk, and YAML aliases can repeat one
# value many times in a few bytes of front matter.
MAX_METADATA_CHARS = 1000
# Characters a file name may not carry into the store: control (Cc) and format (Cf) characters such
# as a newline or the right-to-left override U+202E (which shows "gpj.md" as "dm.jpg"), surrogates
# (Cs: bytes that are not UTF-8), line and paragraph separators (Zl, Zp). They would forge lines in
# logs and reports or disguise a name in a citation.
_UNSAFE_NAME_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


# Longer corpus-relative names are refused as unknown (Linux allows 4096 bytes per path).
MAX_SOURCE_CHARS = 1024


class DocumentError(Exception):
    """A file that cannot be ingested; the message says why and what to do."""


@dataclass(frozen=True)
class SourceDocument:
    """A loaded file: its corpus-relative path, metadata and Markdown text per page."""

    source: str
    format: str
    metadata: dict[str, str]
    pages: list[tuple[int | None, str]] = field(default_factory=list)

    @property
    def title(self) -> str:
        return self.metadata["title"]


def is_corpus_file(path: Path, corpus_dir: Path) -> bool:
    """Whether path is an ingestable file inside corpus_dir (not hidden, not a metadata sidecar)."""
    try:
        rel = path.resolve().relative_to(corpus_dir.resolve())
    except ValueError:
        return False
    hidden = any(part.startswith(".") for part in rel.parts)
    return path.is_file() and not hidden and not path.name.endswith(SIDECAR_SUFFIX)


def discover(corpus_dir: Path) -> list[Path]:
    """All files below corpus_dir that are candidates for ingestion, sorted.

    Symlinks that lead out of the corpus are left out (is_corpus_file resolves them), and rglob
    does not descend into symlinked folders, so a link loop cannot make discovery run forever.
    """
    return [path for path in sorted(corpus_dir.rglob("*")) if is_corpus_file(path, corpus_dir)]


def source_name(path: Path, corpus_dir: Path) -> str:
    """The name a file below corpus_dir is stored, cited and reported under.

    Corpus-relative with "/", in Unicode NFC: a name saved on macOS arrives decomposed ("U" plus a
    combining diaeresis) and must equal the same name typed elsewhere. Characters unsafe to show
    are escaped as \\uXXXX; load_document refuses such files, the escaped name reports them.
    """
    rel = path.absolute().relative_to(corpus_dir.absolute()).as_posix()
    return _escape(unicodedata.normalize("NFC", rel))


def find_corpus_file(corpus_dir: Path, source: str) -> Path | None:
    """The corpus file that is stored and cited as `source` (see source_name), or None.

    The name on disk may differ from the source: a name saved decomposed (NFD, as macOS writes
    it) is stored composed (NFC). Only a non-ASCII source can differ, so only then is the corpus
    searched.
    """
    if len(source) > MAX_SOURCE_CHARS or "\x00" in source:
        return None  # no file has such a name (the OS would refuse it with an error)
    path = corpus_dir / source
    try:
        if is_corpus_file(path, corpus_dir) and source_name(path, corpus_dir) == source:
            return path
    except OSError:  # a path part longer than the file system allows
        return None
    if source.isascii():
        return None
    return next((p for p in discover(corpus_dir) if source_name(p, corpus_dir) == source), None)


def _escape(text: str) -> str:
    return "".join(f"\\u{ord(ch):04x}" if _unsafe(ch) else ch for ch in text)


def _unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in _UNSAFE_NAME_CATEGORIES


def _checked_source(path: Path, corpus_dir: Path) -> str:
    """source_name(path), or DocumentError if the path leads out of the corpus or the name is unsafe.

    load_document is an API: a caller may hand it any path, not only one discover() found.
    """
    if ".." in path.parts:
        raise DocumentError(f"path {_escape(str(path))} contains '..'; only corpus files are read")
    try:
        rel = path.absolute().relative_to(corpus_dir.absolute())
    except ValueError:
        raise DocumentError(
            f"{_escape(str(path))} is outside the corpus folder {corpus_dir}"
        ) from None
    if not _inside(path, corpus_dir):
        raise DocumentError(
            f"{_escape(str(path))} links to a file outside the corpus folder; copy the file in"
        )
    unsafe = sorted({ch for ch in str(rel) if _unsafe(ch)})
    if unsafe:
        codes = ", ".join(
            f"U+{ord(ch):04X} {unicodedata.name(ch, unicodedata.category(ch))}" for ch in unsafe
        )
        raise DocumentError(f"file name contains control or bidi characters ({codes}); rename it")
    return source_name(path, corpus_dir)


def _inside(path: Path, corpus_dir: Path) -> bool:
    """Whether path, with every symlink followed, is inside corpus_dir."""
    return path.resolve().is_relative_to(corpus_dir.resolve())


def _check_size(path: Path, max_bytes: int, label: str = "file") -> None:
    """Refuse by the size on disk, before a byte is read (a sparse 200 MB file costs no I/O)."""
    size = path.stat().st_size
    if size == 0:
        raise DocumentError(f"empty {label} (0 bytes)")
    if size > max_bytes:
        raise DocumentError(
            f"{label} is {size / 1e6:.1f} MB, above the limit of {max_bytes / 1e6:.1f} MB "
            "(ASSISTANT_MAX_FILE_MB)"
        )


def load_document(
    path: Path, corpus_dir: Path, *, max_bytes: int, default_audience: str = "all"
) -> SourceDocument:
    """Load one file; raises DocumentError with a readable reason for anything that cannot be used."""
    source = _checked_source(path, corpus_dir)
    suffix = path.suffix.lower()
    if suffix not in _LOADERS:
        raise DocumentError(
            f"unsupported file type '{suffix or path.name}' "
            f"(supported: {', '.join(sorted(_LOADERS))})"
        )
    fmt, loader = _LOADERS[suffix]
    try:
        _check_size(path, max_bytes)
        meta, pages = loader(path, max_bytes)
        meta.update(_read_sidecar(path, corpus_dir, max_bytes))
    except OSError as exc:  # unreadable (permissions), or gone since discovery
        raise DocumentError(f"cannot read the file: {exc.strerror or exc}") from exc
    if not any(text.strip() for _, text in pages):
        if suffix == ".pdf":
            raise DocumentError("PDF has no text layer (scanned image?); run OCR first")
        raise DocumentError("no text content")
    meta.setdefault("title", _first_heading(pages) or path.stem.replace("-", " ").replace("_", " "))
    meta.setdefault("audience", default_audience)
    return SourceDocument(source=source, format=fmt, metadata=meta, pages=pages)


# --- metadata helpers -------------------------------------------------------------------------


def _clean_metadata(raw: dict | None, origin: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise DocumentError(f"{origin} must be a mapping of key: value, got {type(raw).__name__}")
    meta = {}
    for key in METADATA_KEYS:
        value = raw.get(key)
        if value is None or value == "":
            continue
        meta[key] = _metadata_text(key, value, origin)
    return meta


def _metadata_text(key: str, value: object, origin: str) -> str:
    """One metadata value as text: a scalar or a flat list of scalars, at most MAX_METADATA_CHARS.

    Nested lists are refused before anything is joined: YAML aliases let a few hundred bytes of
    front matter nest a list that str() would expand to gigabytes.
    """
    items = value if isinstance(value, list | tuple) else [value]
    if any(isinstance(item, list | tuple | dict) for item in items):
        raise DocumentError(f"{origin}: '{key}' must be text or a list of texts, not nested")
    texts = [item.isoformat() if isinstance(item, date | datetime) else str(item) for item in items]
    if sum(len(text) for text in texts) > MAX_METADATA_CHARS:
        raise DocumentError(f"{origin}: '{key}' is longer than {MAX_METADATA_CHARS} characters")
    return ",".join(text.strip() for text in texts).strip()


def _parse_yaml(text: str, origin: str) -> dict[str, str]:
    try:
        return _clean_metadata(yaml.safe_load(text), origin)
    except yaml.YAMLError as exc:
        raise DocumentError(f"{origin} is not valid YAML: {exc}".splitlines()[0]) from exc


def _read_sidecar(path: Path, corpus_dir: Path, max_bytes: int) -> dict[str, str]:
    """The sidecar's metadata; it is held to the same rules as the file it describes."""
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if not sidecar.exists():
        return {}
    label = f"metadata file {sidecar.name}"
    if not _inside(sidecar, corpus_dir):
        raise DocumentError(f"{label} links to a file outside the corpus folder")
    _check_size(sidecar, max_bytes, label)
    return _parse_yaml(_decode(sidecar.read_bytes(), sidecar.name), label)


_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)


def _split_front_matter(text: str) -> tuple[dict[str, str], str]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    return _parse_yaml(match.group(1), "front matter"), text[match.end() :]


def _first_heading(pages: list[tuple[int | None, str]]) -> str | None:
    for _, text in pages:
        match = re.search(r"^#\s+(.+)$", text, re.M)
        if match:
            return match.group(1).strip()
    return None


def _decode(data: bytes, name: str) -> str:
    if b"\x00" in data:
        raise DocumentError("binary content (NUL bytes) in a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"text is not valid UTF-8 (first bad byte at offset {exc.start}); save it as UTF-8"
        ) from exc


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
    meta, body = _split_front_matter(_decode(path.read_bytes(), path.name))
    if "title" in meta and not body.lstrip().startswith("#"):
        body = f"# {meta['title']}\n\n{_numbered_to_markdown(body)}"
    else:
        body = _numbered_to_markdown(body)
    return meta, [(None, body)]


def _load_markdown(
    path: Path, max_bytes: int
) -> tuple[dict[str, str], list[tuple[int | None, str]]]:
    meta, body = _split_front_matter(_decode(path.read_bytes(), path.name))
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
        with apply_configuration(**dict.fromkeys(_PDF_OUTPUT_LIMITS, max_bytes)):
            reader = PdfReader(path, strict=False)
            if reader.is_encrypted and not reader.decrypt(""):
                raise DocumentError(
                    "PDF is encrypted (password protected); upload an unprotected copy"
                )
            raw_pages = _pdf_page_texts(reader, max_bytes)
            info = reader.metadata or {}
    except (DocumentError, OSError):  # OSError: the file itself is unreadable
        raise
    except Exception as exc:  # pypdf raises many types on damaged files
        raise DocumentError(_pdf_failure(exc, max_bytes)) from exc
    meta = {}
    if info.get("/Title"):
        meta["title"] = str(info["/Title"]).strip()
    if info.get("/Author"):
        meta["owner"] = str(info["/Author"]).strip()
    pages = []
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
        texts.append(page.extract_text() or "")
        total += len(texts[-1])
        if total > max_chars:
            raise DocumentError(
                f"PDF text inflates beyond {max_chars / 1e6:.1f} MB, the file size limit "
                "(ASSISTANT_MAX_FILE_MB); refused as a possible decompression bomb"
            )
    return texts


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

    soup = BeautifulSoup(_decode(path.read_bytes(), path.name), "html.parser")
    raw = {
        tag.get("name", "").lower(): tag.get("content", "")
        for tag in soup.find_all("meta")
        if tag.get("name")
    }
    meta = _clean_metadata(raw, "HTML <meta> tags")
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
    for element in root.find_all(_HTML_BLOCKS):
        if element.find_parent(_HTML_BLOCKS):
            continue  # its text is already part of the enclosing block
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


def table_lines(rows: list[list[str]]) -> list[str]:
    """A table as Markdown: the first row is the header, each row one line, cells whole (a "|"
    inside a cell becomes "/")."""
    rows = [[c.replace("|", "/") for c in row] for row in rows if any(row)]
    if not rows:
        return []
    width = max(len(row) for row in rows)
    cells = [row + [""] * (width - len(row)) for row in rows]
    lines = ["| " + " | ".join(row) + " |" for row in cells]
    return ["", lines[0], "|" + "---|" * width, *lines[1:], ""]


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
    from docx import Document as open_docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    _check_inflated_size(path, max_bytes)
    try:
        doc = open_docx(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise DocumentError(f"corrupt or unreadable DOCX: {exc}") from exc
    props = doc.core_properties
    meta = _clean_metadata(
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
_LOADERS = {
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
    return frozenset(_LOADERS)
