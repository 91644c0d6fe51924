"""Usage charts on the admin page ("Auswertung", German labels for HR staff), and what the other
analytics tabs (admin_gaps.py) and the JSON/CSV API (admin_api.py) share.

Each tab is built inside the admin page's `gr.Tabs()`; each tab
computes when it is opened and on its button. Every event handler checks the admin first
(runtime.require_admin) and none is part of the public API (api_name=False).

The gap CSV is downloaded from GET /api/admin/gaps.csv (the same admin session cookie): a link
instead of a gr.DownloadButton, because Gradio would copy a returned file into its cache
directory, where the question text would outlive the retention period.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from assistant.admin.reports import DateRange, RangeError, Report, date_range
from assistant.web.admin_auth import AdminDenied
from assistant.web.analytics import Analytics
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
NAME_HEADERS = ["Name", "Anzahl", "davon abgelehnt", "Beispiele", "zuletzt"]
NAME_WIDTHS = ["16%", "7%", "10%", "57%", "10%"]
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


# Long: Gradio layout: the tab's components in page order, then their events.
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
