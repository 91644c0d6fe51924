"""The knowledge-gap queue ("Wissenslücken") and the regression set ("Regressionstests") on the
admin page: what the documents do not answer yet, and the answers HR keeps as tests."""

from __future__ import annotations

import html
from urllib.parse import urlencode

import gradio as gr
import pandas as pd

from assistant.admin.reports import DateRange
from assistant.records.regression import PromoteError
from assistant.web.admin_analytics import (
    CANDIDATE_HEADERS,
    CSV_PATH,
    GAP_HEADERS,
    GAP_WIDTHS,
    NAME_HEADERS,
    NAME_WIDTHS,
    PROMOTED_HEADERS,
    _admin,
    _date_inputs,
    _range,
)
from assistant.web.analytics import Analytics, NotReady
from assistant.web.runtime import Runtime

NO_DOCUMENT = "kein passendes Dokument"
EMPTY = "*Noch keine Einträge.*"


def _csv_link(rng: DateRange) -> str:
    query = urlencode({"start": rng.start.isoformat(), "end": rng.end.isoformat()})
    return (
        f'<a id="gaps-csv-link" href="{html.escape(CSV_PATH)}?{html.escape(query)}" download '
        f">CSV herunterladen ({rng.start:%d.%m.%Y} – {rng.end:%d.%m.%Y})</a>"
    )


def _table(headers: list[str], widths: list[str], elem_id: str) -> gr.Dataframe:
    """A read-only report table whose long cells wrap."""
    return gr.Dataframe(
        headers=headers, column_widths=widths, interactive=False, wrap=True, elem_id=elem_id
    )


def _name_table(analytics: Analytics, rng: DateRange):
    """The names no document mentions: the status line, and the table."""
    asked = analytics.unmentioned(rng)
    rows = [
        [n.name, n.count, n.refused, " | ".join(n.examples), f"{n.last_seen:%d.%m.%Y}"]
        for n in asked
    ]
    message = (
        f"**{len(asked)}** {'Name' if len(asked) == 1 else 'Namen'}"
        if asked
        else "Keine Fragen nach Namen, die kein Dokument nennt, in diesem Zeitraum."
    )
    return message, pd.DataFrame(rows, columns=NAME_HEADERS)


# Long: Gradio layout: the tab's components in page order, then their event.
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
        table = _table(GAP_HEADERS, GAP_WIDTHS, "gaps-table")
        link = gr.HTML(elem_id="gaps-csv")
        gr.Markdown(
            "#### In keinem Dokument erwähnt\n"
            "Namen (Werkzeuge, Standorte, Programme), nach denen gefragt wurde und die kein "
            "Dokument nennt, auch in beantworteten Fragen: Kandidaten für neue Inhalte."
        )
        names_status = gr.Markdown(elem_id="unmentioned-status")
        names = _table(NAME_HEADERS, NAME_WIDTHS, "unmentioned-table")

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
        shown = rng.start.isoformat(), rng.end.isoformat(), message, frame, _csv_link(rng)
        return *shown, *_name_table(analytics, rng)

    gr.on(
        [tab.select, refresh.click],
        show,
        [start, end],
        [start, end, status, table, link, names_status, names],
        api_name=False,
    )


def _candidate_rows(analytics: Analytics) -> pd.DataFrame:
    rows = []
    for r in analytics.regression.candidates():
        answer = r["answer"] if len(r["answer"]) <= 200 else r["answer"][:200] + " …"
        cited = r["citations"] if isinstance(r["citations"], list) else []
        # (rows stored before ratings needed a receipt may hold citations of any shape)
        sources = ", ".join(
            dict.fromkeys(
                str(c["source"]) for c in cited if isinstance(c, dict) and c.get("source")
            )
        )
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


# Long: Gradio layout: the tab's components in page order, then their events.
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
