"""Usage figures over the audit log and the feedback: per day the questions asked, how many were
answered from the knowledge base and how many got "not in the knowledge base", thumbs up/down, and
the median latency; the documents cited most; summary numbers for the whole range.

Pure logic over the SQL database (SQLite or PostgreSQL); the admin page and the JSON API draw from
here. Days are UTC days; a date range is inclusive at both ends.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from assistant.records.audit import audit_table
from assistant.records.feedback import feedback_table
from assistant.records.rollout import FIRST_DAY, LAST_DAY

DEFAULT_DAYS = 30
MAX_DAYS = 3660
TOP_DOCUMENTS = 10


# --- date ranges --------------------------------------------------------------------------------


class RangeError(ValueError):
    """A date range that cannot be used (bad date, end before start, too long)."""


@dataclass(frozen=True)
class DateRange:
    """Whole UTC days from `start` to `end`, both included."""

    start: date
    end: date

    @property
    def since(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)

    @property
    def until(self) -> datetime:
        """The first moment after the range."""
        return self.since + timedelta(days=(self.end - self.start).days + 1)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


# Dates an analytics range may start or end on: anything else is a typo (and 9999-12-31 has no
# next day to end the range on).


def _as_date(value: object, name: str) -> date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    day = _read_date(value)
    if day is None:
        raise RangeError(f"{name}: {str(value).strip()[:40]!r} is not a date (YYYY-MM-DD)")
    if not FIRST_DAY <= day <= LAST_DAY:
        raise RangeError(f"{name}: {day} is outside {FIRST_DAY} to {LAST_DAY}")
    return day


def _read_date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float):  # a timestamp (Gradio's DateTime default type)
        try:
            return datetime.fromtimestamp(value, UTC).date()
        except (OverflowError, OSError, ValueError):
            return None
    text = str(value).strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}([ T].*)?", text):
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            return None
    return None


def date_range(start: object = None, end: object = None, today: date | None = None) -> DateRange:
    """The range from two dates (YYYY-MM-DD strings, dates, or timestamps); a missing end is
    today, a missing start DEFAULT_DAYS days before the end. RangeError for bad input."""
    first, last = _as_date(start, "start"), _as_date(end, "end")
    last = last or today or datetime.now(UTC).date()
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    if last < first:
        raise RangeError(f"end ({last}) is before start ({first})")
    if (last - first).days + 1 > MAX_DAYS:
        raise RangeError(f"the range is longer than {MAX_DAYS} days")
    return DateRange(first, last)


def as_utc(moment: datetime) -> datetime:
    """Database datetimes as aware UTC (SQLite hands them back naive, PostgreSQL aware)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- usage report -------------------------------------------------------------------------------

DAILY_COLUMNS = [
    "date",
    "questions",
    "answered",
    "unanswered",
    "answered_share",
    "thumbs_up",
    "thumbs_down",
    "median_latency_ms",
]


@dataclass
class Report:
    """Usage over a date range: one row per day, the most cited documents, and totals."""

    range: DateRange
    daily: pd.DataFrame  # DAILY_COLUMNS; date is a datetime64 (midnight UTC) per day
    top_documents: pd.DataFrame  # source, title, answers (answers citing the document)
    summary: dict

    def as_dict(self) -> dict:
        daily = []
        for row in self.daily.to_dict("records"):
            row["date"] = row["date"].date().isoformat()
            daily.append({k: _plain(v) for k, v in row.items()})
        return {
            "start": self.range.start.isoformat(),
            "end": self.range.end.isoformat(),
            "summary": {k: _plain(v) for k, v in self.summary.items()},
            "daily": daily,
            "top_documents": [
                {k: _plain(v) for k, v in r.items()} for r in self.top_documents.to_dict("records")
            ],
        }


def _plain(value: object) -> object:
    """JSON-friendly scalars: numpy numbers to Python ones, NaN to None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def _median(values: Iterable) -> float | None:
    clean = [v for v in values if v is not None and not pd.isna(v)]
    return float(np.median(clean)) if clean else None


# Long: one pass over the range's rows; daily figures, summary and top documents share its frames.
def build_report(
    audit_engine: Engine,
    feedback_engine: Engine,
    rng: DateRange,
    titles: dict[str, str] | None = None,
    top_n: int = TOP_DOCUMENTS,
) -> Report:
    """Questions, answered share, feedback and latency per day, top cited documents, totals."""
    a = audit_table.c
    with audit_engine.connect() as conn:
        asked = conn.execute(
            select(a.created_at, a.answered, a.sources, a.latency_ms)
            .where(a.created_at >= rng.since)
            .where(a.created_at < rng.until)
        ).all()
    f = feedback_table.c
    with feedback_engine.connect() as conn:
        rated = conn.execute(
            select(f.created_at, f.rating)
            .where(f.created_at >= rng.since)
            .where(f.created_at < rng.until)
        ).all()

    days = pd.DatetimeIndex([pd.Timestamp(d) for d in rng.days], name="date")
    audit = pd.DataFrame(
        {
            "date": [pd.Timestamp(as_utc(r.created_at).date()) for r in asked],
            "answered": [int(bool(r.answered)) for r in asked],
            "latency_ms": [r.latency_ms for r in asked],
        },
        columns=["date", "answered", "latency_ms"],
    )
    audit["latency_ms"] = pd.to_numeric(audit["latency_ms"], errors="coerce")
    feedback = pd.DataFrame(
        {
            "date": [pd.Timestamp(as_utc(r.created_at).date()) for r in rated],
            "up": [int(r.rating > 0) for r in rated],
            "down": [int(r.rating < 0) for r in rated],
        },
        columns=["date", "up", "down"],
    )
    by_day = audit.groupby("date")
    daily = pd.DataFrame(index=days)
    daily["questions"] = by_day.size().reindex(days, fill_value=0).astype(int)
    daily["answered"] = by_day["answered"].sum().reindex(days, fill_value=0).astype(int)
    daily["unanswered"] = daily["questions"] - daily["answered"]
    daily["answered_share"] = (
        daily["answered"] / daily["questions"].where(daily["questions"] > 0)
    ).round(3)
    rated_by_day = feedback.groupby("date")
    daily["thumbs_up"] = rated_by_day["up"].sum().reindex(days, fill_value=0).astype(int)
    daily["thumbs_down"] = rated_by_day["down"].sum().reindex(days, fill_value=0).astype(int)
    daily["median_latency_ms"] = by_day["latency_ms"].median().reindex(days)
    daily = daily.reset_index()[DAILY_COLUMNS]

    cited = Counter(source for r in asked for source in set(json.loads(r.sources or "[]")))
    top = sorted(cited.items(), key=lambda kv: (-kv[1], kv[0]))[:top_n]
    top_documents = pd.DataFrame(
        [{"source": s, "title": (titles or {}).get(s, ""), "answers": n} for s, n in top],
        columns=["source", "title", "answers"],
    )
    questions = int(daily["questions"].sum())
    answered = int(daily["answered"].sum())
    summary = {
        "days": len(days),
        "questions": questions,
        "answered": answered,
        "unanswered": questions - answered,
        "answered_share": round(answered / questions, 3) if questions else None,
        "thumbs_up": int(daily["thumbs_up"].sum()),
        "thumbs_down": int(daily["thumbs_down"].sum()),
        "median_latency_ms": _median(audit["latency_ms"]),
    }
    return Report(rng, daily, top_documents, summary)


# --- knowledge gaps -----------------------------------------------------------------------------
