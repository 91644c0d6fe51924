"""The rollout for admins as JSON, HTML and CSV under /api/admin/rollout: the stages and targets
(read, replace), the KPIs per stage, group and week, the change log, and the scale-decision report
for the KI-Board."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from assistant.admin.board_report import report_csv, report_html
from assistant.admin.reports import DateRange, RangeError, date_range
from assistant.admin.rollout_report import RolloutKpis, rollout_kpis
from assistant.records.audit import admin_events
from assistant.records.rollout import ACTION, MIN_GROUP_USERS, RolloutError, parse_plan
from assistant.web.admin_auth import AdminDenied
from assistant.web.analytics import Analytics, NotReady
from assistant.web.runtime import Runtime

log = logging.getLogger(__name__)


class StageIn(BaseModel):
    name: str = Field("", description="e.g. Pilot", max_length=200)
    groups: Any = Field(
        ..., description='groups from the SSO headers or the widget token, or ["all"]'
    )
    start: Any = Field(..., description="first day of the stage, YYYY-MM-DD")


class TargetIn(BaseModel):
    target: Any = Field(..., description="the target value (shares 0..1, latency in ms)")
    baseline: Any = Field(None, description="the value before the assistant (optional)")


class PlanIn(BaseModel):
    stages: list[StageIn] = Field(default_factory=list, max_length=50)
    targets: dict[str, TargetIn] = Field(
        default_factory=dict,
        description="answer_rate, thumbs_up_share, median_latency_ms, open_gaps",
    )
    min_group_users: Any = Field(MIN_GROUP_USERS, description="at least 5")

    model_config = {
        "json_schema_extra": {
            "example": {
                "stages": [
                    {"name": "Pilot", "groups": ["hr", "disposition"], "start": "2026-03-02"},
                    {"name": "Welle 2", "groups": ["vertrieb", "it"], "start": "2026-05-04"},
                    {"name": "Alle", "groups": ["all"], "start": "2026-07-01"},
                ],
                "targets": {
                    "answer_rate": {"target": 0.8, "baseline": 0.0},
                    "thumbs_up_share": {"target": 0.75},
                    "median_latency_ms": {"target": 3000},
                    "open_gaps": {"target": 5},
                },
                "min_group_users": 5,
            }
        }
    }


class Rollout:
    """The rollout figures of a running app (the admin tab and the API share it)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.analytics = Analytics(runtime)

    def range(self, start: object, end: object) -> DateRange:
        """The period asked for; without a start, from the first stage (or the last 30 days)."""
        plan = self.runtime.rollout.load()
        today = datetime.now(UTC).date()
        if not start and plan.stages and plan.stages[0].start <= today:
            start = plan.stages[0].start
        return date_range(start, end)

    def kpis(self, rng: DateRange) -> RolloutKpis:
        try:
            gaps = self.analytics.gaps(rng)
        except NotReady:
            gaps = []
        runtime = self.runtime
        return rollout_kpis(
            runtime.audit.engine, runtime.feedback.engine, runtime.rollout.load(), rng, gaps
        )

    def save(self, data: dict, actor: str) -> dict:
        """Store a plan (RolloutError: nothing stored); the change is in the admin events."""
        return self.runtime.rollout.save(parse_plan(data), actor)

    def events(self) -> list[dict]:
        return [
            {**e, "created_at": e["created_at"].isoformat()}
            for e in admin_events(self.runtime.rollout.engine, ACTION)
        ]


# Long: a router: each route is a short function of its own, sharing the runtime.
def rollout_router(runtime: Runtime) -> APIRouter:
    """/api/admin/rollout (GET, PUT), /kpis, /events, /report.html, /report.csv: admins only."""
    router = APIRouter(prefix="/api/admin/rollout", tags=["admin", "rollout"])
    rollout = Rollout(runtime)

    def admin(request: Request):
        try:
            return runtime.require_admin(request)
        except AdminDenied as exc:
            raise HTTPException(exc.status, detail=str(exc)) from exc

    def period(start: str | None, end: str | None) -> DateRange:
        try:
            return rollout.range(start, end)
        except RangeError as exc:
            raise HTTPException(422, detail=str(exc)) from exc

    @router.get("")
    def show(request: Request) -> dict:
        """The stages, targets and privacy threshold, and the stage in force today (UTC)."""
        admin(request)
        plan = runtime.rollout.load()
        current = plan.current(datetime.now(UTC).date())
        return {"plan": plan.as_dict(), "current_stage": current.as_dict() if current else None}

    @router.put("")
    def replace(body: PlanIn, request: Request) -> dict:
        """Replace the plan. 422 with the reason (a date that is not YYYY-MM-DD, an empty group
        list, overlapping stages, a target that is not a number, a threshold below 5); nothing
        is stored then. Every replica applies a stored plan within a few seconds."""
        who = admin(request)
        try:
            change = rollout.save(body.model_dump(), who.user or "")
        except RolloutError as exc:
            raise HTTPException(422, detail=str(exc)) from exc
        log.info("rollout plan changed by %s", who.user)
        return {"plan": change["after"], "before": change["before"]}

    @router.get("/events")
    def events(request: Request) -> list[dict]:
        """Every change of the plan, newest first: who, when, from what to what."""
        admin(request)
        return rollout.events()

    @router.get("/kpis")
    def kpis(request: Request, start: str | None = None, end: str | None = None) -> dict:
        """Each KPI per stage, per group in each stage and per week against its target; group
        figures below `min_group_users` distinct users say "zu wenige Nutzer" instead.
        start/end YYYY-MM-DD (default: from the first stage to today)."""
        admin(request)
        return rollout.kpis(period(start, end)).as_dict()

    @router.get("/report.html", response_class=HTMLResponse)
    def report(request: Request, start: str | None = None, end: str | None = None) -> HTMLResponse:
        """The scale-decision report for the KI-Board as a printable page (no personal data)."""
        admin(request)
        stamp = datetime.now(UTC).strftime("%d.%m.%Y %H:%M UTC")
        page = report_html(rollout.kpis(period(start, end)), generated=stamp)
        return HTMLResponse(page, headers={"cache-control": "no-store"})

    @router.get("/report.csv")
    def report_table(
        request: Request, start: str | None = None, end: str | None = None
    ) -> Response:
        """The report's figures as CSV for Excel (UTF-8 with BOM, `;`-separated)."""
        admin(request)
        rng = period(start, end)
        name = f"rollout_{rng.start.isoformat()}_{rng.end.isoformat()}.csv"
        return Response(
            report_csv(rollout.kpis(rng)),
            media_type="text/csv; charset=utf-8",
            headers={
                "content-disposition": f'attachment; filename="{name}"',
                "cache-control": "no-store",
            },
        )

    return router


def plan_json(runtime: Runtime) -> str:
    """The stored plan as indented JSON (for the admin tab's editor)."""
    return json.dumps(runtime.rollout.load().as_dict(), ensure_ascii=False, indent=2)
