"""The rollout's figures: each KPI per stage and per group against its target, week by week, and
what the scale-decision report for the KI-Board (board_report.py) is made of.

Privacy: a figure of a group (or a stage, or a week of either) is shown only when at least
`min_group_users` (never fewer than 5) distinct signed-in users asked in it; otherwise it says
"zu wenige Nutzer". User ids are read only to count them and never leave this module. Ratings
carry the rater's groups but no user id: the thumbs-up share per group is of the group's ratings.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine

from assistant.admin.gaps import GapGroup
from assistant.admin.reports import DateRange, as_utc
from assistant.audience import EVERYONE
from assistant.records.audit import audit_table
from assistant.records.feedback import feedback_table
from assistant.records.rollout import KPIS, RolloutPlan, Stage

TOO_FEW = "zu wenige Nutzer"
ALL_GROUPS = "alle"
NO_DATA = "keine Daten"


@dataclass(frozen=True)
class _Asked:
    day: date
    user: str | None  # None: anonymous, not counted as a distinct user
    groups: frozenset[str]
    answered: bool
    latency_ms: int | None


@dataclass
class KpiRow:
    """One scope (a stage, a group within a stage, or a week) and its figures."""

    stage: str
    group: str  # ALL_GROUPS for the whole stage
    start: date
    end: date
    users: int | None  # None when suppressed
    questions: int | None
    values: dict[str, float | None]
    suppressed: bool = False

    def as_dict(self, targets: dict) -> dict:
        return {
            "stage": self.stage,
            "group": self.group,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "suppressed": self.suppressed,
            "note": TOO_FEW if self.suppressed else "",
            "users": self.users,
            "questions": self.questions,
            "kpis": {k: {"value": v, **status(k, v, targets)} for k, v in self.values.items()},
        }


def status(kpi: str, value: float | None, targets: dict) -> dict:
    """The KPI's target, baseline and whether the value meets the target (None: no target/data)."""
    target = targets.get(kpi)
    if target is None:
        return {"target": None, "baseline": None, "met": None}
    met = None
    if value is not None:
        met = value >= target.target if KPIS[kpi][1] == "higher" else value <= target.target
    return {"target": target.target, "baseline": target.baseline, "met": met}


@dataclass
class RolloutKpis:
    """Everything the rollout tab, the JSON API and the board report show for a period."""

    range: DateRange
    plan: RolloutPlan
    current: Stage | None
    stages: list[KpiRow]
    groups: list[KpiRow]
    weeks: list[KpiRow]
    totals: dict
    gaps: list[GapGroup] = field(default_factory=list)
    incidents: list[dict] = field(default_factory=list)  # thumbs-down comments

    def open_items(self) -> list[str]:
        """What the KI-Board should know is not done: KPIs off target, gaps without an owner."""
        items = []
        for kpi, target in self.plan.targets.items():
            value = self.totals.get(kpi)
            met = status(kpi, value, self.plan.targets)["met"]
            if met is None:
                items.append(f"{KPIS[kpi][0]}: {NO_DATA} im Zeitraum")
            elif not met:
                items.append(
                    f"{KPIS[kpi][0]}: {_fmt(kpi, value)} statt Ziel {_fmt(kpi, target.target)}"
                )
        for gap in self.gaps:
            if not gap.owner:
                items.append(
                    f"Wissenslücke ohne Verantwortliche(n): „{gap.question}“ ({gap.count}×)"
                )
        hidden = sorted({r.group for r in self.groups if r.suppressed})
        if hidden:
            items.append(f"Zu wenige Nutzer für Gruppenzahlen: {', '.join(hidden)}")
        return items

    def as_dict(self) -> dict:
        t = self.plan.targets
        return {
            "start": self.range.start.isoformat(),
            "end": self.range.end.isoformat(),
            "plan": self.plan.as_dict(),
            "current_stage": self.current.as_dict() if self.current else None,
            "totals": {
                **self.totals,
                "kpis": {
                    k: {"value": self.totals.get(k), **status(k, self.totals.get(k), t)}
                    for k in KPIS
                },
            },
            "stages": [r.as_dict(t) for r in self.stages],
            "groups": [r.as_dict(t) for r in self.groups],
            "weeks": [r.as_dict(t) for r in self.weeks],
            "gaps": [
                {"question": g.question, "count": g.count, "title": g.title, "owner": g.owner}
                for g in self.gaps
            ],
            "incidents": self.incidents,
            "open_items": self.open_items(),
        }


def _read(audit_engine: Engine, feedback_engine: Engine, rng: DateRange):
    a = audit_table.c
    with audit_engine.connect() as conn:
        rows = conn.execute(
            select(a.created_at, a.user_id, a.via, a.groups, a.answered, a.latency_ms)
            .where(a.created_at >= rng.since)
            .where(a.created_at < rng.until)
        ).all()
    asked = [
        _Asked(
            as_utc(r.created_at).date(),
            None if r.via == "anonymous" or r.user_id == "anonymous" else r.user_id,
            frozenset(g for g in (r.groups or "").split(",") if g),
            bool(r.answered),
            r.latency_ms,
        )
        for r in rows
    ]
    f = feedback_table.c
    with feedback_engine.connect() as conn:
        rated = conn.execute(
            select(f.created_at, f.rating, f.question, f.comment, f.groups)
            .where(f.created_at >= rng.since)
            .where(f.created_at < rng.until)
        ).all()
    return asked, [
        (
            as_utc(r.created_at).date(),
            r.rating,
            r.question,
            r.comment,
            frozenset(g for g in (r.groups or "").split(",") if g),
        )
        for r in rated
    ]


def _figures(asked: list[_Asked], ratings: list[int] | None, gaps: int | None) -> dict:
    questions = len(asked)
    latencies = [x.latency_ms for x in asked if x.latency_ms is not None]
    up = sum(1 for r in ratings or [] if r > 0)
    return {
        "answer_rate": round(sum(x.answered for x in asked) / questions, 3) if questions else None,
        "thumbs_up_share": round(up / len(ratings), 3) if ratings else None,
        "median_latency_ms": float(statistics.median(latencies)) if latencies else None,
        "open_gaps": gaps,
    }


def _row(stage, group, start, end, asked, ratings, gaps, least) -> KpiRow:
    users = len({x.user for x in asked if x.user})
    if users < least:
        return KpiRow(stage, group, start, end, None, None, dict.fromkeys(KPIS), True)
    return KpiRow(stage, group, start, end, users, len(asked), _figures(asked, ratings, gaps))


def _gaps_between(gaps: Iterable[GapGroup], start: date, end: date) -> int:
    return sum(1 for g in gaps if g.first_seen <= end and g.last_seen >= start)


# Long: one pass per scope (stage, group in stage, week); the rows share the rows read once.
def rollout_kpis(
    audit_engine: Engine,
    feedback_engine: Engine,
    plan: RolloutPlan,
    rng: DateRange,
    gaps: list[GapGroup] | None = None,
    today: date | None = None,
) -> RolloutKpis:
    """The KPIs of a period per stage, per group in each stage, and per week, against targets."""
    gaps = gaps or []
    asked, rated = _read(audit_engine, feedback_engine, rng)
    least = plan.min_group_users

    def within(start: date, end: date, group: str | None = None):
        return (
            [x for x in asked if start <= x.day <= end and (group is None or group in x.groups)],
            [r[1] for r in rated if start <= r[0] <= end and (group is None or group in r[4])],
        )

    stages, groups = [], []
    for n, stage in enumerate(plan.stages):
        nxt = plan.stages[n + 1].start - timedelta(days=1) if n + 1 < len(plan.stages) else rng.end
        start, end = max(stage.start, rng.start), min(nxt, rng.end)
        if start > end:
            continue
        in_stage, ratings = within(start, end)
        gap_count = _gaps_between(gaps, start, end)
        stages.append(_row(stage.name, ALL_GROUPS, start, end, in_stage, ratings, gap_count, least))
        admitted = [g for s in plan.stages[: n + 1] for g in s.groups if g != EVERYONE]
        for group in admitted:
            mine, rated_by_group = within(start, end, group)
            groups.append(_row(stage.name, group, start, end, mine, rated_by_group, None, least))
    weeks = []
    monday = rng.start - timedelta(days=rng.start.weekday())
    while monday <= rng.end:
        start, end = max(monday, rng.start), min(monday + timedelta(days=6), rng.end)
        in_week, ratings = within(start, end)
        in_force = plan.current(end)
        label = (
            in_force.name if in_force else "vor der Einführung" if plan.stages else "ohne Stufen"
        )
        weeks.append(
            _row(
                label,
                ALL_GROUPS,
                start,
                end,
                in_week,
                ratings,
                _gaps_between(gaps, start, end),
                least,
            )
        )
        # each group admitted by then, week by week (the same floor of users)
        for group in [g for s in plan.started(end) for g in s.groups if g != EVERYONE]:
            mine, rated_by_group = within(start, end, group)
            weeks.append(_row(label, group, start, end, mine, rated_by_group, None, least))
        monday += timedelta(days=7)
    totals = {
        "users": len({x.user for x in asked if x.user}),
        "questions": len(asked),
        "ratings": len(rated),
        **_figures(asked, [r[1] for r in rated], len(gaps)),
    }
    if totals["users"] < least:  # too few to show even the whole period's user count
        totals["users"] = None
    incidents = [
        {"date": day.isoformat(), "question": question, "comment": comment}
        for day, rating, question, comment, _ in sorted(rated, key=lambda r: r[:4], reverse=True)
        if rating < 0 and (comment or "").strip()
    ][:20]
    current = plan.current(today or rng.end)
    return RolloutKpis(rng, plan, current, stages, groups, weeks, totals, gaps[:10], incidents)


def _fmt(kpi: str, value: float | None) -> str:
    if value is None:
        return "–"
    if kpi in ("answer_rate", "thumbs_up_share"):
        return f"{value * 100:.0f} %"
    if kpi == "median_latency_ms":
        return f"{value:,.0f} ms".replace(",", ".")
    return f"{value:g}"
