"""Analytics on the admin page (German labels for HR staff) and as JSON/CSV under /api/admin/.

Three tabs, each built inside the admin page's `gr.Tabs()`: usage charts ("Auswertung"), the
knowledge-gap queue ("Wissenslücken") and the regression set ("Regressionstests"). Each tab
computes when it is opened and on its button. Every event handler checks the admin first
(runtime.require_admin) and none is part of the public API (api_name=False).

The gap CSV is downloaded from GET /api/admin/gaps.csv (the same admin session cookie): a link
instead of a gr.DownloadButton, because Gradio would copy a returned file into its cache
directory, where the question text would outlive the retention period.
"""

from __future__ import annotations

import html
from typing import Annotated
from urllib.parse import urlencode

import gradio as gr
import pandas as pd
from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as FastAPIPath
from fastapi.responses import Response

from assistant.analytics import Analytics, DateRange, NotReady, RangeError, Report, date_range
from assistant.regression import PromoteError
from assistant.web.admin_auth import AdminDenied
from assistant.web.runtime import Runtime

ANSWERED = "beantwortet"
NOT_FOUND = "nicht in der Wissensbasis"
UP = "hilfreich"
DOWN = "nicht hilfreich"
CSV_PATH = "/api/admin/gaps.csv"

GAP_HEADERS = [
    "Nr.",
    "Anzahl",
    "offen",
    "negativ",
    "Frage",
    "weitere Beispiele",
    "Kommentare",
    "Dokument",
    "Verantwortlich",
    "zuletzt",
]
GAP_WIDTHS = ["4%", "6%", "5%", "6%", "19%", "21%", "11%", "11%", "10%", "7%"]
CANDIDATE_HEADERS = ["Nr.", "Datum", "Frage", "Antwort", "Quelle"]
PROMOTED_HEADERS = ["Test-ID", "Frage", "Sprache", "Erwartet", "übernommen am", "von"]


def _admin(runtime: Runtime, request: gr.Request):
    try:
        return runtime.require_admin(request)
    except AdminDenied as exc:
        raise gr.Error(str(exc)) from exc


def _range(start, end) -> DateRange:
    try:
        return date_range(start, end)
    except RangeError as exc:
        raise gr.Error(f"Zeitraum ungültig: {exc}") from exc


def _date_inputs(prefix: str):
    with gr.Row():
        start = gr.DateTime(
            label="Von", include_time=False, type="string", elem_id=f"{prefix}-start", scale=2
        )
        end = gr.DateTime(
            label="Bis", include_time=False, type="string", elem_id=f"{prefix}-end", scale=2
        )
        button = gr.Button("Aktualisieren", variant="primary", elem_id=f"{prefix}-refresh", scale=1)
    return start, end, button


def _de(n: float | None, suffix: str = "") -> str:
    if n is None:
        return "–"
    return f"{n:,.0f}".replace(",", ".") + suffix


# --- chart data ---------------------------------------------------------------------------------


# Up to this many days a chart has a bar per day; a longer range has a bar per calendar week.
MAX_DAILY_BARS = 45


def _periods(daily: pd.DataFrame) -> pd.DataFrame:
    """Days as bars ("01.12."), or calendar weeks ("KW 48/26") for long ranges, in order."""
    dates = pd.to_datetime(daily["date"])
    if len(daily) <= MAX_DAILY_BARS:
        return daily.assign(Tag=dates.dt.strftime("%d.%m."), order=range(len(daily)))
    week = dates.dt.isocalendar()
    label = "KW " + week["week"].astype(str).str.zfill(2) + "/" + (week["year"] % 100).astype(str)
    grouped = (
        daily.assign(Tag=label.values, key=(week["year"] * 100 + week["week"]).values)
        .groupby(["key", "Tag"], as_index=False)
        .agg(
            questions=("questions", "sum"),
            answered=("answered", "sum"),
            unanswered=("unanswered", "sum"),
            thumbs_up=("thumbs_up", "sum"),
            thumbs_down=("thumbs_down", "sum"),
            median_latency_ms=("median_latency_ms", "median"),
        )
        .sort_values("key")
    )
    share = grouped["answered"] / grouped["questions"].where(grouped["questions"] > 0)
    return grouped.assign(answered_share=share, order=range(len(grouped)))


def count_limit(values: pd.Series) -> list[int]:
    """A count axis from 0 to a round number at least 5: whole-number ticks, and a visible
    axis when everything is 0."""
    top = int(values.max()) if len(values) and pd.notna(values.max()) else 0
    return [0, max(5, -(-top // 5) * 5)]


def chart_frames(report: Report) -> dict[str, pd.DataFrame]:
    """The report as the long-format frames the plots draw (German column names); every chart
    is a bar chart, so a range of one day still shows its bars."""
    periods = _periods(report.daily)
    tag = periods["Tag"]
    questions = pd.concat(
        [
            pd.DataFrame({"Tag": tag, "Ergebnis": ANSWERED, "Fragen": periods["answered"]}),
            pd.DataFrame({"Tag": tag, "Ergebnis": NOT_FOUND, "Fragen": periods["unanswered"]}),
        ],
        ignore_index=True,
    )
    asked = periods.loc[periods["questions"] > 0]
    share = pd.DataFrame(
        {"Tag": asked["Tag"], "beantwortet (%)": (asked["answered_share"] * 100).round(1)}
    )
    feedback = pd.concat(
        [
            pd.DataFrame({"Tag": tag, "Bewertung": UP, "Anzahl": periods["thumbs_up"]}),
            pd.DataFrame({"Tag": tag, "Bewertung": DOWN, "Anzahl": periods["thumbs_down"]}),
        ],
        ignore_index=True,
    )
    latency = periods.dropna(subset=["median_latency_ms"])
    latency = pd.DataFrame({"Tag": latency["Tag"], "Median (ms)": latency["median_latency_ms"]})
    top = report.top_documents
    documents = pd.DataFrame(
        {
            "Dokument": [t or s for s, t in zip(top["source"], top["title"], strict=True)],
            "Antworten": top["answers"],
        }
    )
    return {
        "questions": questions,
        "share": share,
        "feedback": feedback,
        "latency": latency,
        "documents": documents,
        "order": list(tag),
    }


def summary_markdown(report: Report) -> str:
    s = report.summary
    share = "–" if s["answered_share"] is None else f"{s['answered_share'] * 100:.0f} %"
    return (
        f"**{report.range.start:%d.%m.%Y} – {report.range.end:%d.%m.%Y}** · "
        f"**{_de(s['questions'])}** Fragen · **{share}** beantwortet · "
        f"**{_de(s['unanswered'])}** nicht in der Wissensbasis · "
        f"Bewertungen: **{_de(s['thumbs_up'])}** hilfreich, "
        f"**{_de(s['thumbs_down'])}** nicht hilfreich · "
        f"Antwortzeit (Median) **{_de(s['median_latency_ms'], ' ms')}**"
    )


# --- tabs ---------------------------------------------------------------------------------------


def _daily(y: str, title: str, elem_id: str, **options):
    """A bar chart with one bar (or stack) per day or week, full width, labels in order."""
    return gr.BarPlot(
        x="Tag", y=y, title=title, x_label_angle=-45, elem_id=elem_id, height=260, **options
    )


def analytics_tab(runtime: Runtime) -> None:
    """Tab "Auswertung": questions, answered share, feedback, latency and top documents."""
    analytics = Analytics(runtime)
    with gr.Tab("Auswertung", id="analytics") as tab:
        start, end, refresh = _date_inputs("analytics")
        summary = gr.Markdown(elem_id="analytics-summary")
        questions = _daily(
            "Fragen",
            "Fragen pro Tag",
            "plot-questions",
            color="Ergebnis",
            y_aggregate="sum",
            color_map={ANSWERED: "#16a34a", NOT_FOUND: "#f59e0b"},
        )
        with gr.Row():
            share = _daily(
                "beantwortet (%)", "Anteil beantwortet", "plot-answered-share", y_lim=[0, 100]
            )
            latency = _daily("Median (ms)", "Antwortzeit (Median)", "plot-latency")
        feedback = _daily(
            "Anzahl",
            "Bewertungen pro Tag",
            "plot-feedback",
            color="Bewertung",
            y_aggregate="sum",
            color_map={UP: "#2563eb", DOWN: "#dc2626"},
        )
        documents = gr.BarPlot(
            x="Dokument",
            y="Antworten",
            y_aggregate="sum",
            sort="-y",
            x_label_angle=-25,
            y_lim=[0, None],
            title="Meistzitierte Dokumente",
            elem_id="plot-top-documents",
        )

    def show(start_value, end_value, request: gr.Request):
        _admin(runtime, request)
        rng = _range(start_value, end_value)
        report = analytics.report(rng)
        frames = chart_frames(report)
        days = frames["order"]
        per_day = "Tag" if len(report.daily) <= MAX_DAILY_BARS else "Woche"

        def bars(frame: pd.DataFrame, title: str, y: str | None = None, **extra):
            limits = {"y_lim": count_limit(frame[y].groupby(frame["Tag"]).sum())} if y else {}
            return gr.BarPlot(value=frame, sort=days, title=title, **limits, **extra)

        return (
            rng.start.isoformat(),
            rng.end.isoformat(),
            summary_markdown(report),
            bars(frames["questions"], f"Fragen pro {per_day}", "Fragen"),
            bars(frames["share"], "Anteil beantwortet"),
            bars(frames["feedback"], f"Bewertungen pro {per_day}", "Anzahl"),
            bars(frames["latency"], "Antwortzeit (Median)"),
            gr.BarPlot(
                value=frames["documents"],
                y_lim=count_limit(frames["documents"]["Antworten"]),
            ),
        )

    gr.on(
        [tab.select, refresh.click],
        show,
        [start, end],
        [start, end, summary, questions, share, feedback, latency, documents],
        api_name=False,
    )


NO_DOCUMENT = "kein passendes Dokument"
EMPTY = "*Noch keine Einträge.*"


def _csv_link(rng: DateRange) -> str:
    query = urlencode({"start": rng.start.isoformat(), "end": rng.end.isoformat()})
    return (
        f'<a id="gaps-csv-link" href="{html.escape(CSV_PATH)}?{html.escape(query)}" download '
        f">CSV herunterladen ({rng.start:%d.%m.%Y} – {rng.end:%d.%m.%Y})</a>"
    )


def gaps_tab(runtime: Runtime) -> None:
    """Tab "Wissenslücken": unanswered and thumbs-down questions grouped by meaning."""
    analytics = Analytics(runtime)
    with gr.Tab("Wissenslücken", id="gaps") as tab:
        gr.Markdown(
            "Fragen, die der Assistent nicht beantworten konnte (*offen*), und Antworten, die "
            "als nicht hilfreich bewertet wurden (*negativ*), nach Bedeutung gruppiert. "
            "*Dokument* ist das Dokument, das der Gruppe am nächsten kommt, *Verantwortlich* "
            "seine Ansprechperson: wer die fehlende Antwort ergänzen kann."
        )
        start, end, refresh = _date_inputs("gaps")
        status = gr.Markdown(elem_id="gaps-status")
        table = gr.Dataframe(
            headers=GAP_HEADERS,
            column_widths=GAP_WIDTHS,
            interactive=False,
            wrap=True,
            elem_id="gaps-table",
        )
        link = gr.HTML(elem_id="gaps-csv")

    def show(start_value, end_value, request: gr.Request):
        _admin(runtime, request)
        rng = _range(start_value, end_value)
        try:
            groups = analytics.gaps(rng)
        except NotReady as exc:
            raise gr.Error(f"Die Wissensbasis lädt noch: {exc}") from exc
        rows = [
            [
                n,
                g.count,
                g.unanswered,
                g.thumbs_down,
                g.question,
                " | ".join(g.examples[1:]),
                " | ".join(g.comments),
                g.title or g.source or NO_DOCUMENT,
                g.owner,
                f"{g.last_seen:%d.%m.%Y}",
            ]
            for n, g in enumerate(groups, start=1)
        ]
        asked = sum(g.count for g in groups)
        message = (
            f"**{len(groups)}** {'Gruppe' if len(groups) == 1 else 'Gruppen'} aus **{asked}** "
            f"{'Frage' if asked == 1 else 'Fragen'}"
            if groups
            else "Keine offenen Fragen und keine negativen Bewertungen in diesem Zeitraum."
        )
        frame = pd.DataFrame(rows, columns=GAP_HEADERS)
        return rng.start.isoformat(), rng.end.isoformat(), message, frame, _csv_link(rng)

    gr.on(
        [tab.select, refresh.click],
        show,
        [start, end],
        [start, end, status, table, link],
        api_name=False,
    )


def _candidate_rows(analytics: Analytics) -> pd.DataFrame:
    rows = []
    for r in analytics.regression.candidates():
        answer = r["answer"] if len(r["answer"]) <= 200 else r["answer"][:200] + " …"
        sources = ", ".join(dict.fromkeys(c.get("source", "") for c in r["citations"] if c))
        rows.append([r["id"], f"{r['created_at']:%d.%m.%Y}", r["question"], answer, sources])
    return pd.DataFrame(rows, columns=CANDIDATE_HEADERS)


def _promoted_rows(analytics: Analytics) -> pd.DataFrame:
    rows = []
    for r in analytics.regression.rows():
        item = r["item"]
        expected = "; ".join(f"{e['source']}: „{e['contains']}“" for e in item["expected"])
        rows.append(
            [
                item["id"],
                item["question"],
                item["lang"],
                expected or "(nicht beantwortbar)",
                f"{r['promoted_at']:%d.%m.%Y}",
                r["promoted_by"],
            ]
        )
    return pd.DataFrame(rows, columns=PROMOTED_HEADERS)


def regression_tab(runtime: Runtime) -> None:
    """Tab "Regressionstests": promote thumbs-up answers into the evaluation set."""
    analytics = Analytics(runtime)
    with gr.Tab("Regressionstests", id="regression") as tab:
        gr.Markdown(
            "Als hilfreich bewertete Antworten als Testfall übernehmen: `python -m assistant eval` "
            "prüft dann bei jeder Änderung, dass die Frage weiter mit derselben Stelle "
            "beantwortet wird. Zeile anklicken, dann übernehmen."
        )
        candidates_empty = gr.Markdown(EMPTY, elem_id="regression-candidates-empty")
        candidates = gr.Dataframe(
            headers=CANDIDATE_HEADERS,
            interactive=False,
            wrap=True,
            label="Als hilfreich bewertet, noch nicht übernommen",
            elem_id="regression-candidates",
        )
        with gr.Row():
            # A text field: an empty number field would show 0, which is no feedback.
            feedback_id = gr.Textbox(
                label="Feedback-Nr. (Zeile oben anklicken)",
                placeholder="z. B. 12",
                max_length=20,
                elem_id="promote-id",
                scale=1,
            )
            promote = gr.Button(
                "In den Testsatz übernehmen", variant="primary", elem_id="promote", scale=1
            )
        status = gr.Markdown(elem_id="promote-status")
        promoted_empty = gr.Markdown(EMPTY, elem_id="regression-promoted-empty")
        promoted = gr.Dataframe(
            headers=PROMOTED_HEADERS,
            interactive=False,
            wrap=True,
            label="Im Testsatz",
            elem_id="regression-promoted",
        )

    def tables():
        found, kept = _candidate_rows(analytics), _promoted_rows(analytics)
        return (
            gr.update(value=found, visible=not found.empty),
            gr.update(value=kept, visible=not kept.empty),
            gr.update(visible=found.empty),
            gr.update(visible=kept.empty),
        )

    def show(request: gr.Request):
        _admin(runtime, request)
        return tables()

    def pick(event: gr.SelectData, request: gr.Request):
        _admin(runtime, request)
        row = event.row_value or []
        return str(row[0]) if row and str(row[0]).isdigit() else ""

    def do_promote(value, request: gr.Request):
        who = _admin(runtime, request)
        if not str(value or "").strip().isdigit():
            raise gr.Error("Bitte eine Feedback-Nr. wählen (Zeile anklicken).")
        try:
            item = analytics.promote(int(value), by=who.user or "")
        except PromoteError as exc:
            raise gr.Error(f"Nicht übernommen: {exc}") from exc
        except NotReady as exc:
            raise gr.Error(f"Die Wissensbasis lädt noch: {exc}") from exc
        message = f"Übernommen als **{item['id']}**: „{html.escape(item['question'])}“"
        return message, "", *tables()

    shown = [candidates, promoted, candidates_empty, promoted_empty]
    gr.on([tab.select], show, None, shown, api_name=False)
    candidates.select(pick, None, feedback_id, api_name=False)
    promote.click(do_promote, feedback_id, [status, feedback_id, *shown], api_name=False)


# --- JSON / CSV API -----------------------------------------------------------------------------


def analytics_router(runtime: Runtime) -> APIRouter:
    """/api/admin/analytics, /api/admin/gaps(.csv), /api/admin/feedback/{id}/promote,
    /api/admin/regression (admins only; AdminGate checks first, each handler again)."""
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
