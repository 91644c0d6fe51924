"""The rollout plan: which groups may use the chat from which day (pilot, more groups, everyone),
the KPI targets the KI-Board decides on, and the least number of users a group figure needs.

The plan is one row in the app database (shared by every replica), read through a short cache so a
change reaches every replica within seconds and without a restart; every change is written with
its admin_events entry (who, when, from what to what) in one transaction.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, insert, select
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Engine

from assistant.audience import EVERYONE, parse_groups
from assistant.records.audit import admin_event, admin_events_table
from assistant.records.audit import metadata as audit_metadata
from assistant.store.database import create_tables

metadata = MetaData()

rollout_table = Table(
    "rollout_plan",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1: there is one plan
    Column("plan", Text, nullable=False),  # JSON of RolloutPlan.as_dict()
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(200), nullable=False),
)

ACTION = "rollout.plan"
MIN_GROUP_USERS = 5  # figures of fewer users could point at a person: never lower

# KPI key -> (German label, which way is better)
KPIS: dict[str, tuple[str, str]] = {
    "answer_rate": ("Antwortquote", "higher"),
    "thumbs_up_share": ("Anteil Daumen hoch", "higher"),
    "median_latency_ms": ("Antwortzeit Median (ms)", "lower"),
    "open_gaps": ("Offene Wissenslücken", "lower"),
}
_SHARES = {"answer_rate", "thumbs_up_share"}  # 0..1


class RolloutError(ValueError):
    """A plan that cannot be stored: the reason names the stage or KPI and what is wrong."""


class NotInStage(Exception):  # noqa: N818 - reads as the condition it reports
    """The asker's groups are not in any stage that has started; `available_from` is the first
    stage start that includes them (None when no stage does)."""

    def __init__(self, available_from: date | None) -> None:
        super().__init__(
            f"not yet available for your group (from {available_from.isoformat()})"
            if available_from
            else "not yet available for your group"
        )
        self.available_from = available_from


@dataclass(frozen=True)
class Stage:
    name: str
    groups: tuple[str, ...]  # ("all",) for everyone
    start: date

    def as_dict(self) -> dict:
        return {"name": self.name, "groups": list(self.groups), "start": self.start.isoformat()}


@dataclass(frozen=True)
class Target:
    target: float
    baseline: float | None = None

    def as_dict(self) -> dict:
        return {"target": self.target, "baseline": self.baseline}


@dataclass(frozen=True)
class RolloutPlan:
    """Stages ordered by start; no stage at all means everyone may use the chat (as before)."""

    stages: tuple[Stage, ...] = ()
    targets: dict[str, Target] = field(default_factory=dict)
    min_group_users: int = MIN_GROUP_USERS

    def started(self, today: date) -> list[Stage]:
        return [s for s in self.stages if s.start <= today]

    def current(self, today: date) -> Stage | None:
        """The stage with the latest start on or before today."""
        started = self.started(today)
        return started[-1] if started else None

    def admits(self, groups: frozenset[str], today: date) -> bool:
        """Whether a user with these groups may use the chat today."""
        if not self.stages:
            return True
        allowed = {g for s in self.started(today) for g in s.groups}
        return EVERYONE in allowed or bool(allowed & set(groups))

    def available_from(self, groups: frozenset[str], today: date) -> date | None:
        """The first future stage start that includes one of these groups (or everyone)."""
        upcoming = [
            s.start
            for s in self.stages
            if s.start > today and (EVERYONE in s.groups or set(s.groups) & set(groups))
        ]
        return min(upcoming) if upcoming else None

    def check(self, groups: frozenset[str], today: date) -> None:
        """NotInStage unless these groups may use the chat today."""
        if not self.admits(groups, today):
            raise NotInStage(self.available_from(groups, today))

    def as_dict(self) -> dict:
        return {
            "stages": [s.as_dict() for s in self.stages],
            "targets": {k: t.as_dict() for k, t in self.targets.items()},
            "min_group_users": self.min_group_users,
        }


# --- reading a plan from what an admin sent -----------------------------------------------------

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# The days the reports can show (admin/reports.py): a stage outside them would break them.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)


def _day(value: object, where: str) -> date:
    text = str(value).strip() if isinstance(value, str | date) else ""
    day = None
    if isinstance(value, date):
        day = value
    elif _DATE.match(text):
        with contextlib.suppress(ValueError):
            day = date.fromisoformat(text)
    if day is None:
        raise RolloutError(f"{where}: start {str(value)[:40]!r} is not a date (YYYY-MM-DD)")
    if not FIRST_DAY <= day <= LAST_DAY:  # the reports' range: a plan they could not show
        raise RolloutError(f"{where}: start {day} is outside {FIRST_DAY} to {LAST_DAY}")
    return day


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or value is None:
        raise RolloutError(f"{where}: {value!r} is not a number")
    if isinstance(value, str):
        value = value.strip().replace(",", ".")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise RolloutError(f"{where}: {str(value)[:40]!r} is not a number") from None
    except OverflowError:  # an integer of hundreds of digits
        raise RolloutError(f"{where}: {str(value)[:40]}… is not a finite number") from None
    if not math.isfinite(number):
        raise RolloutError(f"{where}: {value!r} is not a finite number")
    return number


def _stage(raw: object, n: int) -> Stage:
    if not isinstance(raw, dict):
        raise RolloutError(f"stage {n}: expected an object with name, groups and start")
    name = str(raw.get("name") or "").strip()[:80] or f"Stufe {n}"
    where = f"stage {n} ({name})"
    listed = raw.get("groups")
    if isinstance(listed, str):
        listed = [g for g in re.split(r"[,;\s]+", listed) if g]
    if not isinstance(listed, list) or not listed:
        raise RolloutError(f"{where}: the group list is empty (name groups, or 'all')")
    groups = parse_groups(listed)
    if len(groups) != len({str(g).strip().lower() for g in listed}):
        raise RolloutError(f"{where}: group names are letters, digits, '-' and '_' ({listed!r})")
    if EVERYONE in groups and len(groups) > 1:
        raise RolloutError(f"{where}: 'all' already includes every group; list it alone")
    return Stage(name, tuple(sorted(groups)), _day(raw.get("start"), where))


def parse_plan(data: object) -> RolloutPlan:
    """A plan from JSON-like data; RolloutError with the reason for anything that cannot be used
    (bad date, empty group list, overlapping stages, a target that is not a number)."""
    if not isinstance(data, dict):
        raise RolloutError("expected an object with stages, targets and min_group_users")
    raw_stages = data.get("stages") or []
    if not isinstance(raw_stages, list):
        raise RolloutError("stages: expected a list")
    stages = sorted((_stage(raw, n) for n, raw in enumerate(raw_stages, 1)), key=lambda s: s.start)
    seen: dict[str, str] = {}
    for before, after in zip(stages, stages[1:], strict=False):
        if before.start == after.start:
            raise RolloutError(
                f"stages {before.name!r} and {after.name!r} overlap: both start {after.start}"
            )
        if EVERYONE in before.groups:
            raise RolloutError(
                f"stage {after.name!r} overlaps {before.name!r}, which already opens to all"
            )
    for stage in stages:
        for group in stage.groups:
            if group in seen:
                raise RolloutError(
                    f"stages {seen[group]!r} and {stage.name!r} overlap: group {group!r} is in both"
                )
            seen[group] = stage.name
    raw_targets = data.get("targets") or {}
    if not isinstance(raw_targets, dict):
        raise RolloutError("targets: expected an object of KPI -> {target, baseline}")
    targets = {}
    for kpi, raw in raw_targets.items():
        if kpi not in KPIS:
            raise RolloutError(f"targets: unknown KPI {kpi!r} (known: {', '.join(KPIS)})")
        raw = raw if isinstance(raw, dict) else {"target": raw}
        target = _number(raw.get("target"), f"target {kpi}")
        baseline = raw.get("baseline")
        if baseline is not None and not (isinstance(baseline, str) and not baseline.strip()):
            baseline = _number(baseline, f"baseline {kpi}")
        else:
            baseline = None
        for value in (target, baseline):
            if value is None:
                continue
            if value < 0 or (kpi in _SHARES and value > 1):
                span = "between 0 and 1" if kpi in _SHARES else "0 or more"
                raise RolloutError(f"target {kpi}: {value} must be {span}")
        targets[kpi] = Target(target, baseline)
    least = data.get("min_group_users", MIN_GROUP_USERS)
    least_n = _number(least, "min_group_users")
    if least_n != int(least_n) or least_n < MIN_GROUP_USERS:
        raise RolloutError(f"min_group_users: {least!r} must be a whole number, at least 5")
    return RolloutPlan(tuple(stages), targets, int(least_n))


# --- the plan in the app database ---------------------------------------------------------------


class RolloutStore:
    """The plan in the app database, read through a cache of `ttl_s` seconds."""

    def __init__(self, engine: Engine, ttl_s: float = 3.0) -> None:
        self.engine = engine
        create_tables(engine, metadata)
        create_tables(engine, audit_metadata)  # admin_events
        self.ttl_s = ttl_s
        self._cached: tuple[float, RolloutPlan] | None = None
        self._lock = threading.Lock()

    def load(self) -> RolloutPlan:
        """The stored plan (an empty plan, everyone admitted, when none was ever stored)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(rollout_table.c.plan).where(rollout_table.c.id == 1)).first()
        return parse_plan(json.loads(row.plan)) if row else RolloutPlan()

    def plan(self) -> RolloutPlan:
        """The plan as of at most ttl_s ago (the gate asks this for every question)."""
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self.ttl_s:
                return self._cached[1]
        plan = self.load()
        with self._lock:
            self._cached = (time.monotonic(), plan)
        return plan

    def check(self, groups: frozenset[str], today: date | None = None) -> None:
        """NotInStage unless these groups may use the chat today (UTC)."""
        self.plan().check(groups, today or datetime.now(UTC).date())

    def save(self, plan: RolloutPlan, actor: str) -> dict:
        """Store a new plan with its admin_events entry; returns that entry's before/after."""
        after = plan.as_dict()
        with self.engine.begin() as conn:
            row = conn.execute(select(rollout_table.c.plan).where(rollout_table.c.id == 1)).first()
            before = json.loads(row.plan) if row else RolloutPlan().as_dict()
            values = {
                "plan": json.dumps(after, ensure_ascii=False),
                "updated_at": datetime.now(UTC),
                "updated_by": (actor or "unknown")[:200],
            }
            if row:
                conn.execute(
                    sql_update(rollout_table).where(rollout_table.c.id == 1).values(values)
                )
            else:
                conn.execute(insert(rollout_table).values(id=1, **values))
            conn.execute(
                insert(admin_events_table).values(admin_event(actor, ACTION, before, after))
            )
        with self._lock:
            self._cached = (time.monotonic(), plan)
        return {"before": before, "after": after}
