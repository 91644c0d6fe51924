"""Load corpus files (PDF, Markdown, text, HTML, DOCX) into one shape: metadata plus Markdown per page.

Every format is turned into Markdown headings (`#` = document title, `##` = section, ...) so that
chunking has a single, structure-aware path. PDFs keep one text per page so that page numbers travel
with every chunk. Metadata comes from the file itself (front matter, <meta> tags, document
properties) and from an optional sidecar `<file>.meta.yaml`, which wins.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from assistant.ingest.formats import LOADERS
from assistant.ingest.metadata import DocumentError, check_size, decode_text, parse_metadata

SIDECAR_SUFFIX = ".meta.yaml"
# Characters a file name may not carry into the store: control (Cc) and format (Cf) characters such
# as a newline or the right-to-left override U+202E (which shows "gpj.md" as "dm.jpg"), surrogates
# (Cs: bytes that are not UTF-8), line and paragraph separators (Zl, Zp). They would forge lines in
# logs and reports or disguise a name in a citation.
_UNSAFE_NAME_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


# Longer corpus-relative names are refused as unknown (Linux allows 4096 bytes per path).
MAX_SOURCE_CHARS = 1024


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


def load_document(
    path: Path, corpus_dir: Path, *, max_bytes: int, default_audience: str = "all"
) -> SourceDocument:
    """Load one file; raises DocumentError with a readable reason for anything that cannot be used."""
    source = _checked_source(path, corpus_dir)
    suffix = path.suffix.lower()
    if suffix not in LOADERS:
        raise DocumentError(
            f"unsupported file type '{suffix or path.name}' "
            f"(supported: {', '.join(sorted(LOADERS))})"
        )
    fmt, loader = LOADERS[suffix]
    try:
        check_size(path, max_bytes)
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


def _read_sidecar(path: Path, corpus_dir: Path, max_bytes: int) -> dict[str, str]:
    """The sidecar's metadata; it is held to the same rules as the file it describes."""
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if not sidecar.exists():
        return {}
    label = f"metadata file {sidecar.name}"
    if not _inside(sidecar, corpus_dir):
        raise DocumentError(f"{label} links to a file outside the corpus folder")
    check_size(sidecar, max_bytes, label)
    return parse_metadata(decode_text(sidecar.read_bytes(), sidecar.name), label)


def _first_heading(pages: list[tuple[int | None, str]]) -> str | None:
    for _, text in pages:
        match = re.search(r"^#\s+(.+)$", text, re.M)
        if match:
            return match.group(1).strip()
    return None
