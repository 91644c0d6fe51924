"""What the app database keeps of an upload (table `uploads`: the bytes and the form's metadata,
shared by every replica), what HR enters with it, and what the admin list shows per document."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from assistant.audience import parse_groups
from assistant.search.validity import parse_date

metadata = MetaData()

uploads_table = Table(
    "uploads",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("source", String(300), nullable=False, unique=True),  # upload:<id><suffix>
    Column("original_name", String(300), nullable=False),
    Column("title", String(1000), nullable=False),
    Column("audience", String(1000), nullable=False),
    Column("owner", String(1000), nullable=False, default=""),
    Column("effective_date", String(10), nullable=False, default=""),
    Column("expiry_date", String(10), nullable=False, default=""),
    Column("version", String(100), nullable=False, default=""),
    Column("document_id", String(300), nullable=False, default=""),
    Column("uploaded_by", String(200), nullable=False),
    Column("uploaded_at", DateTime(timezone=True), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),  # pending | indexed | failed
    Column("error", Text, nullable=False, default=""),
    Column("chunks", Integer, nullable=False, default=0),
    Column("indexed_at", DateTime(timezone=True)),
)


# An upload whose record is written but whose chunks may not all be (see DocumentAdmin._store).
PENDING = "pending"

# Everything of an upload's record but its bytes.
_RECORD_COLUMNS = [c for c in uploads_table.c if c.name != "content"]


class UploadError(ValueError):
    """An upload that cannot be taken; the message names the problem."""


@dataclass
class UploadMeta:
    """What HR enters with an upload; empty fields fall back to the document's own metadata."""

    title: str = ""
    audience: str = ""
    owner: str = ""
    effective_date: str = ""
    expiry_date: str = ""
    version: str = ""
    document_id: str = ""

    def checked(self) -> UploadMeta:
        """Trimmed values; UploadError for a date that is not YYYY-MM-DD, an expiry before the
        effective date, an audience without group names, or an overlong value."""
        values = {k: (v or "").strip() for k, v in asdict(self).items()}
        for key, value in values.items():
            if len(value) > 300:
                raise UploadError(f"{key} is longer than 300 characters")
            if "\n" in value or "\r" in value:
                raise UploadError(f"{key} must be one line")
        for key in ("effective_date", "expiry_date"):
            if values[key] and (
                parse_date(values[key]) is None or len(values[key]) != len("2025-01-31")
            ):
                raise UploadError(f"{key} must be a date like 2025-01-31, got '{values[key]}'")
        effective, expiry = parse_date(values["effective_date"]), parse_date(values["expiry_date"])
        if effective and expiry and expiry < effective:
            raise UploadError("expiry_date is before effective_date")
        if values["audience"] and not parse_groups(values["audience"]):
            raise UploadError(
                f"audience '{values['audience']}' names no group (e.g. all, or hr, it)"
            )
        return UploadMeta(**values)

    def overrides(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}


@dataclass
class UploadResult:
    """What happened to one uploaded file."""

    original_name: str
    status: str  # indexed | failed
    source: str = ""
    chunks: int = 0
    error: str = ""


@dataclass
class DocumentRow:
    """One document in the admin list (corpus file or upload)."""

    source: str
    title: str
    kind: str  # corpus | upload
    chunks: int
    audience: str
    owner: str
    effective_date: str
    expiry_date: str
    version: str
    status: str  # current | expired | superseded | pending | indexing | not indexed
    last_ingest: str
    original_name: str = ""
    uploaded_by: str = ""
    error: str = ""
