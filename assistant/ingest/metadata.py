"""What a document may say about itself (title, owner, dates, audience, ...) and the checks every
loader applies to what it reads: size on disk, UTF-8 text, YAML front matter held to plain values."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    pass

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


class DocumentError(Exception):
    """A file that cannot be ingested; the message says why and what to do."""


def check_size(path: Path, max_bytes: int, label: str = "file") -> None:
    """Refuse by the size on disk, before a byte is read (a sparse 200 MB file costs no I/O)."""
    size = path.stat().st_size
    if size == 0:
        raise DocumentError(f"empty {label} (0 bytes)")
    if size > max_bytes:
        raise DocumentError(
            f"{label} is {size / 1e6:.1f} MB, above the limit of {max_bytes / 1e6:.1f} MB "
            "(ASSISTANT_MAX_FILE_MB)"
        )


def clean_metadata(raw: dict | None, origin: str) -> dict[str, str]:
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


def parse_metadata(text: str, origin: str) -> dict[str, str]:
    try:
        return clean_metadata(yaml.safe_load(text), origin)
    except yaml.YAMLError as exc:
        raise DocumentError(f"{origin} is not valid YAML: {exc}".splitlines()[0]) from exc
    except ValueError as exc:  # YAML reads 2025-02-30 as a date, which does not exist
        raise DocumentError(
            f"{origin}: a value written as a date is no real date ({exc}); correct or quote it"
        ) from exc


_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)


def split_front_matter(text: str) -> tuple[dict[str, str], str]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    return parse_metadata(match.group(1), "front matter"), text[match.end() :]


def decode_text(data: bytes, name: str) -> str:
    if b"\x00" in data:
        raise DocumentError("binary content (NUL bytes) in a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"text is not valid UTF-8 (first bad byte at offset {exc.start}); save it as UTF-8"
        ) from exc
