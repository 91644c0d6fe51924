"""Names employees asked about that no document mentions ("Tabnine", "Standort Antwerpen"), from
the audit rows' `unmentioned` (the question's names no document the asker may read uses; see
answering/answerability.py `unknown_names`).

These are the plainest knowledge gaps: whether the question was answered from the closest
passages (the answer then opens with "The documents do not mention …") or refused, the tool,
place or programme it names is one the documents should perhaps cover. The gap groups
(gaps.py) see only refused and thumbs-down questions and group by meaning; this list counts
names, also in answered questions.

A name is counted once per question; spellings that differ only in case or spacing are one name,
shown as it was asked most often. No user id is read. Question text exists only as long as the
retention keeps audit rows (retention.py).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.engine import Engine

from assistant.admin.gaps import _clean
from assistant.admin.reports import DateRange, as_utc
from assistant.records.audit import audit_table

MAX_ROWS = 5000  # the newest questions, when a range holds more
EXAMPLES = 3


@dataclass
class AskedName:
    """A name no document mentions, and the questions that asked about it."""

    name: str
    count: int  # questions that name it
    refused: int  # of them, not answered
    examples: list[str]  # up to EXAMPLES distinct questions, newest first
    first_seen: date
    last_seen: date

    def as_dict(self) -> dict:
        data = asdict(self)
        data["first_seen"] = self.first_seen.isoformat()
        data["last_seen"] = self.last_seen.isoformat()
        return data


def _key(name: str) -> str:
    return " ".join(name.casefold().split())


def _names(raw: str | None) -> list[str]:
    """The names of one audit row; a row written by hand or damaged counts as none."""
    try:
        names = json.loads(raw or "[]")
    except ValueError:
        return []
    if not isinstance(names, list):
        return []
    return [n.strip() for n in names if isinstance(n, str) and n.strip()]


def unmentioned_names(engine: Engine, rng: DateRange, limit: int = MAX_ROWS) -> list[AskedName]:
    """The names asked about in the range, most asked first (then the most recent)."""
    a = audit_table.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(a.created_at, a.question, a.answered, a.unmentioned)
            .where(a.unmentioned.is_not(None))
            .where(a.created_at >= rng.since)
            .where(a.created_at < rng.until)
            .order_by(a.created_at.desc(), a.id.desc())
            .limit(limit)
        ).all()
    asked: dict[str, list] = {}  # key -> rows, newest first
    spellings: dict[str, Counter] = {}
    for row in rows:
        names = {_key(n): n for n in reversed(_names(row.unmentioned))}  # first spelling wins
        for key, name in names.items():
            asked.setdefault(key, []).append(row)
            spellings.setdefault(key, Counter())[name] += 1
    found = []
    for key, questions in asked.items():
        when = [as_utc(r.created_at) for r in questions]
        texts = [_clean(r.question) for r in questions]
        found.append(
            AskedName(
                name=spellings[key].most_common(1)[0][0],
                count=len(questions),
                refused=sum(not r.answered for r in questions),
                examples=list(dict.fromkeys(t for t in texts if t))[:EXAMPLES],
                first_seen=min(when).date(),
                last_seen=max(when).date(),
            )
        )
    found.sort(key=lambda n: (-n.count, -n.last_seen.toordinal(), n.name.casefold()))
    return found
