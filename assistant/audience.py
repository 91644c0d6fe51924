"""Who may read a document: audience groups on every chunk, and the filter retrieval applies.

A document declares its audience in its metadata (`audience: all`, `audience: hr, management`).
Each chunk carries one boolean flag per group (`aud_hr: true`), because a Chroma `where` filter
can test flags but not membership in a list. A reader sees a chunk if any of their groups is
flagged on it; everybody is in `all`. A declared audience that cannot be read (no valid group
name) gives no flags at all: the document is visible to nobody until it is fixed (least
privilege), and the ingest logs why.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger(__name__)

EVERYONE = "all"
PREFIX = "aud_"
_GROUP = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def parse_groups(value: object) -> frozenset[str]:
    """Group names from "hr, management" or a list; invalid entries are dropped."""
    if isinstance(value, str):
        items = re.split(r"[,;\s]+", value)
    elif isinstance(value, list | tuple | set | frozenset):
        items = [str(v) for v in value]
    else:
        return frozenset()
    return frozenset(i.strip().lower() for i in items if _GROUP.match(i.strip().lower()))


def audience_metadata(declared: object, source: str = "") -> dict[str, bool]:
    """The chunk metadata flags for a document's declared audience."""
    groups = parse_groups(declared)
    if not groups:
        log.warning("%s: audience %r cannot be read; visible to nobody", source, declared)
    return {PREFIX + g: True for g in sorted(groups)}


def reader_groups(groups: object = ()) -> frozenset[str]:
    """A reader's groups, always including everyone's."""
    return parse_groups(groups if groups else []) | {EVERYONE}


def where_filter(groups: frozenset[str]) -> dict:
    """The Chroma `where` clause for chunks these groups may read."""
    clauses = [{PREFIX + g: True} for g in sorted(groups)]
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


def visible(metadata: dict, groups: frozenset[str]) -> bool:
    """The same rule as `where_filter`, for chunks already in memory (BM25, subsections)."""
    return any(metadata.get(PREFIX + g) is True for g in groups)
