"""Policy versions: which stored documents are in force today.

Documents declare `effective_date`, `expiry_date`, `version` and optionally `document_id` (front
matter, sidecar, DOCX/PDF properties, or the admin's upload form). Versions of one document share
the `document_id`, or else the title. A document is

- `pending` before its effective date,
- `expired` after its expiry date,
- `superseded` when a newer version of the same document is in force,
- `current` otherwise (also when it declares no dates at all).

Retrieval prefers the current version of a document and drops a superseded one when the current
version is among the candidates; whatever is still cited from a non-current document says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from assistant.audience import visible

CURRENT = "current"
NOTES = {
    "de": {
        "expired": "„{title}“ ist seit {since} nicht mehr gültig (abgelaufen)",
        "superseded": "„{title}“ ist ersetzt durch „{by}“ (gültig ab {since})",
        "pending": "„{title}“ gilt erst ab {since}",
        "lead": "Achtung, nicht die aktuell gültige Fassung: ",
    },
    "en": {
        "expired": "“{title}” is no longer valid (expired on {since})",
        "superseded": "“{title}” is superseded by “{by}” (in force since {since})",
        "pending": "“{title}” only applies from {since}",
        "lead": "Note, not the version in force: ",
    },
}


@dataclass(frozen=True)
class Validity:
    """Whether a document is in force; for the others since when and (superseded) by what."""

    status: str = CURRENT  # current | expired | superseded | pending
    since: str = ""  # ISO date: expiry, the successor's effective date, or the effective date
    replaced_by: str = ""  # source of the version in force (superseded only)
    replaced_by_title: str = ""

    @property
    def current(self) -> bool:
        return self.status == CURRENT

    def note(self, title: str, language: str) -> str:
        """One sentence for the answer's notice (empty for a current document)."""
        if self.current:
            return ""
        texts = NOTES.get(language, NOTES["en"])
        since = parse_date(self.since)
        shown = since.strftime("%d.%m.%Y") if since and language == "de" else self.since
        return texts[self.status].format(title=title, since=shown, by=self.replaced_by_title)


def parse_date(value: object) -> date | None:
    """A metadata date (YYYY-MM-DD, also with a time appended); None if absent or unreadable."""
    match = re.match(r"\s*(\d{4})-(\d{2})-(\d{2})", str(value or ""))
    if not match:
        return None
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def _version_key(value: str) -> tuple:
    """'2.10' sorts after '2.9': numbers compare as numbers."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", value or "") if p)


@dataclass(frozen=True)
class _Doc:
    source: str
    title: str
    group: str
    effective: date | None
    expiry: date | None
    version: str
    metadata: dict = field(hash=False, compare=False, repr=False)  # its audience flags


class Versions:
    """The versions of every stored document, from the chunks' metadata (one entry per source)."""

    def __init__(self, metadatas: list[dict]) -> None:
        docs: dict[str, _Doc] = {}
        for meta in metadatas:
            source = meta.get("source")
            if not source or source in docs:
                continue
            title = str(meta.get("title", source))
            docs[source] = _Doc(
                source=source,
                title=title,
                group=str(meta.get("document_id") or "").strip().casefold()
                or re.sub(r"\s+", " ", title).strip().casefold(),
                effective=parse_date(meta.get("effective_date")),
                expiry=parse_date(meta.get("expiry_date")),
                version=str(meta.get("version", "")),
                metadata=meta,
            )
        self.docs = docs
        self.groups: dict[str, list[_Doc]] = {}
        for doc in docs.values():
            self.groups.setdefault(doc.group, []).append(doc)
        self._cache: dict[tuple[str, date, frozenset[str] | None], Validity] = {}
        self._newest: dict[tuple[str, date, frozenset[str] | None], _Doc | None] = {}

    def group_of(self, source: str) -> str:
        doc = self.docs.get(source)
        return doc.group if doc else source

    def validity(
        self, source: str, today: date | None = None, groups: frozenset[str] | None = None
    ) -> Validity:
        """Whether `source` is in force `today`, as seen by a reader in `groups` (None: an admin
        who sees every version). A version the reader may not read does not exist for them: it
        supersedes nothing, and its title and date never reach them."""
        today = today or date.today()
        key = (source, today, groups)
        if key not in self._cache:
            self._cache[key] = self._validity(source, today, groups)
        return self._cache[key]

    def _validity(self, source: str, today: date, groups: frozenset[str] | None) -> Validity:
        doc = self.docs.get(source)
        if doc is None:
            return Validity()
        if doc.effective and doc.effective > today:
            return Validity("pending", doc.effective.isoformat())
        if doc.expiry and doc.expiry < today:
            return Validity("expired", doc.expiry.isoformat())
        newest = self._newest_in_force(doc.group, today, groups)
        if newest is None:
            return Validity()
        if newest.source != doc.source and (
            (newest.effective or date.min),
            _version_key(newest.version),
        ) > ((doc.effective or date.min), _version_key(doc.version)):
            since = newest.effective.isoformat() if newest.effective else ""
            return Validity("superseded", since, newest.source, newest.title)
        return Validity()

    def _newest_in_force(
        self, group: str, today: date, groups: frozenset[str] | None
    ) -> _Doc | None:
        """The newest version of a document in force `today` that the reader may see; computed
        once per group, day and reader (not once per version asked about: a group can hold
        many versions, and retrieval asks about every candidate's source)."""
        key = (group, today, groups)
        if key not in self._newest:
            in_force = [
                d
                for d in self.groups[group]
                if _in_force(d, today) and (groups is None or visible(d.metadata, groups))
            ]
            self._newest[key] = max(
                in_force,
                key=lambda d: (d.effective or date.min, _version_key(d.version), d.source),
                default=None,
            )
        return self._newest[key]


def _in_force(doc: _Doc, today: date) -> bool:
    return not (doc.effective and doc.effective > today) and not (doc.expiry and doc.expiry < today)


def outdated_notice(citations, language: str) -> str:
    """What the answer must say when it cites documents that are not in force ("" if none).

    `citations` are answer.Citation objects (n, title, status, status_since, replaced_by)."""
    notes = [
        f"[{c.n}] " + Validity(c.status, c.status_since, "", c.replaced_by).note(c.title, language)
        for c in citations
        if c.status != CURRENT
    ]
    if not notes:
        return ""
    return NOTES.get(language, NOTES["en"])["lead"] + "; ".join(notes) + "."
