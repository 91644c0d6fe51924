"""The admin analytics as JSON and CSV: /api/admin/analytics, /api/admin/gaps(.csv),
/api/admin/unmentioned, /api/admin/feedback/{id}/promote, /api/admin/regression (admin session
or SSO admin group)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as FastAPIPath
from fastapi.responses import Response

from assistant.admin.reports import DateRange, RangeError, date_range
from assistant.records.regression import PromoteError
from assistant.web.admin_auth import AdminDenied
from assistant.web.analytics import Analytics, NotReady
from assistant.web.runtime import Runtime

# --- JSON / CSV API -----------------------------------------------------------------------------


# Long: a router: each route is a short function of its own, sharing the runtime.
def analytics_router(runtime: Runtime) -> APIRouter:
    """/api/admin/analytics, /api/admin/gaps(.csv), /api/admin/unmentioned,
    /api/admin/feedback/{id}/promote, /api/admin/regression (admins only; AdminGate checks
    first, each handler again)."""
    router = APIRouter(prefix="/api/admin", tags=["admin"])
    analytics = Analytics(runtime)

    def admin(request: Request):
        try:
            return runtime.require_admin(request)
        except AdminDenied as exc:
            raise HTTPException(exc.status, detail=str(exc)) from exc

    def parse(start: str | None, end: str | None) -> DateRange:
        try:
            return date_range(start, end)
        except RangeError as exc:
            raise HTTPException(422, detail=str(exc)) from exc

    def ready(call):
        try:
            return call()
        except NotReady as exc:
            raise HTTPException(503, detail=str(exc)) from exc

    @router.get("/analytics")
    def usage(request: Request, start: str | None = None, end: str | None = None) -> dict:
        """Questions, answered vs. not in the knowledge base, thumbs up/down and median latency
        per day, top cited documents, and totals; start/end are YYYY-MM-DD (UTC days,
        inclusive; default the last 30 days)."""
        admin(request)
        return analytics.report(parse(start, end)).as_dict()

    @router.get("/gaps")
    def gaps(request: Request, start: str | None = None, end: str | None = None) -> dict:
        """The knowledge-gap groups as JSON (user ids only if ANALYTICS_SHOW_USERS)."""
        admin(request)
        rng = parse(start, end)
        groups = ready(lambda: analytics.gaps(rng))
        return {
            "start": rng.start.isoformat(),
            "end": rng.end.isoformat(),
            "groups": [g.as_dict() for g in groups],
        }

    @router.get("/unmentioned")
    def unmentioned(request: Request, start: str | None = None, end: str | None = None) -> dict:
        """Names asked about that no document mentions, most asked first, with how many of
        those questions were refused and up to three of them."""
        admin(request)
        rng = parse(start, end)
        return {
            "start": rng.start.isoformat(),
            "end": rng.end.isoformat(),
            "names": [n.as_dict() for n in analytics.unmentioned(rng)],
        }

    @router.get("/gaps.csv")
    def gaps_csv(request: Request, start: str | None = None, end: str | None = None) -> Response:
        """The knowledge-gap groups as CSV for Excel (UTF-8 with BOM, `;`-separated)."""
        admin(request)
        rng = parse(start, end)
        data = ready(lambda: analytics.gaps_csv(rng))
        name = f"wissensluecken_{rng.start.isoformat()}_{rng.end.isoformat()}.csv"
        return Response(
            data,
            media_type="text/csv; charset=utf-8",
            headers={
                "content-disposition": f'attachment; filename="{name}"',
                "cache-control": "no-store",
            },
        )

    @router.post("/feedback/{feedback_id}/promote")
    def promote(
        feedback_id: Annotated[int, FastAPIPath(ge=1, le=2**63 - 1, description="feedback id")],
        request: Request,
    ) -> dict:
        """Promote a thumbs-up answer into the evaluation set (idempotent); 404 unknown id,
        409 thumbs-down or text already removed, 422 nothing quoted to expect."""
        who = admin(request)
        try:
            return ready(lambda: analytics.promote(feedback_id, by=who.user or ""))
        except PromoteError as exc:
            raise HTTPException(exc.status, detail=str(exc)) from exc

    @router.get("/regression")
    def regression(request: Request) -> list[dict]:
        """The promoted items (what `python -m assistant eval` adds to the golden set)."""
        admin(request)
        return [
            {
                **r["item"],
                "promoted_at": r["promoted_at"].isoformat(),
                "promoted_by": r["promoted_by"],
            }
            for r in analytics.regression.rows()
        ]

    return router
