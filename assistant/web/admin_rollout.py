"""Tab "Einführung" of the admin page (German labels for HR and the CAIO's team): the stages (who
may use the chat from when), the KPI targets, each KPI per stage, group and week against its
target, the change log, and links to the scale-decision report (HTML to print, CSV).

Every handler checks the admin first; none is part of the public API (api_name=False). The report
opens from GET /api/admin/rollout/report.html with the same admin session cookie.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from assistant.admin.rollout_report import TOO_FEW, KpiRow, RolloutKpis, _fmt, status
from assistant.records.rollout import KPIS, RolloutError, Target
from assistant.web.admin_analytics import _admin, _date_inputs, _range
from assistant.web.rollout_api import Rollout
from assistant.web.runtime import Runtime

STAGE_HEADERS = ["Stufe", "Gruppen (durch Komma getrennt, „all“ = alle)", "Start (JJJJ-MM-TT)"]
TARGET_HEADERS = ["Kennzahl", "Ziel", "Basiswert (optional)"]
KPI_HEADERS = ["Stufe", "Gruppe", "Zeitraum", "Nutzer", "Fragen"] + [v[0] for v in KPIS.values()]
EVENT_HEADERS = ["Zeitpunkt", "von", "vorher", "nachher"]
REPORT_PATH = "../api/admin/rollout/report"  # relative to /admin/, so it works under a root path


def _stage_frame(plan) -> pd.DataFrame:
    rows = [[s.name, ", ".join(s.groups), s.start.isoformat()] for s in plan.stages]
    return pd.DataFrame(rows or [["", "", ""]], columns=STAGE_HEADERS)


def _target_frame(plan) -> pd.DataFrame:
    rows = []
    for kpi, (label, _) in KPIS.items():
        target = plan.targets.get(kpi)
        rows.append(
            [
                label,
                "" if target is None else f"{target.target:g}",
                "" if target is None or target.baseline is None else f"{target.baseline:g}",
            ]
        )
    return pd.DataFrame(rows, columns=TARGET_HEADERS)


def plan_from_tables(stages: pd.DataFrame, targets: pd.DataFrame, least) -> dict:
    """The plan the two tables show, as parse_plan reads it (empty rows are left out)."""
    by_label = {label: kpi for kpi, (label, _) in KPIS.items()}
    plan_stages = [
        {"name": str(r[0]).strip(), "groups": str(r[1]), "start": str(r[2]).strip()}
        for r in stages.fillna("").values.tolist()
        if any(str(c).strip() for c in r)
    ]
    plan_targets = {}
    for label, target, baseline in targets.fillna("").values.tolist():
        if str(target).strip() or str(baseline).strip():
            if label not in by_label:
                raise RolloutError(f"unbekannte Kennzahl {label!r}")
            plan_targets[by_label[label]] = {"target": target, "baseline": baseline}
    return {"stages": plan_stages, "targets": plan_targets, "min_group_users": least}


def plan_summary(plan: dict) -> str:
    """A stored plan in one line for the change log: stages, targets, threshold."""
    stages = "; ".join(
        f"{s['name']}: {', '.join(s['groups'])} ab {s['start']}" for s in plan.get("stages", [])
    )
    targets = ", ".join(
        f"{KPIS[k][0]} {t['target']:g}" for k, t in plan.get("targets", {}).items() if k in KPIS
    )
    least = plan.get("min_group_users", 5)
    return f"{stages or 'keine Stufen (alle)'} | Ziele: {targets or '–'} | ab {least} Nutzern"


def _kpi_cell(kpi: str, value, targets: dict[str, Target]) -> str:
    met = status(kpi, value, targets)["met"]
    mark = {True: " ✔", False: " ✘", None: ""}[met]
    target = targets.get(kpi)
    goal = f" (Ziel {_fmt(kpi, target.target)})" if target else ""
    return f"{_fmt(kpi, value)}{mark}{goal}"


def kpi_frame(kpis: RolloutKpis, rows: list[KpiRow]) -> pd.DataFrame:
    """Rows of a KPI table with German headers; suppressed rows say TOO_FEW."""
    out: list[list] = []
    for row in rows:
        span = f"{row.start:%d.%m.}–{row.end:%d.%m.%Y}"
        if row.suppressed:
            out.append([row.stage, row.group, span, TOO_FEW, ""] + [""] * len(KPIS))
            continue
        values = [_kpi_cell(k, v, kpis.plan.targets) for k, v in row.values.items()]
        out.append([row.stage, row.group, span, row.users, row.questions, *values])
    return pd.DataFrame(out, columns=KPI_HEADERS)


# Long: a Gradio tab: its components, then the two handlers wired to them.
def rollout_tab(runtime: Runtime) -> None:
    """Tab "Einführung": stages, targets, KPIs, change log and the board report."""
    rollout = Rollout(runtime)
    with gr.Tab("Einführung", id="rollout") as tab:
        gr.Markdown(
            "Wer den Assistenten ab wann nutzen darf (Pilot, weitere Bereiche, alle) und die "
            "Ziele für die Skalierungsentscheidung des KI-Boards. Ohne Stufen steht er allen offen."
        )
        stages = gr.Dataframe(
            headers=STAGE_HEADERS,
            datatype=["str", "str", "str"],
            column_count=3,
            column_limits=(3, 3),
            row_count=3,
            interactive=True,
            label="Stufen",
            elem_id="rollout-stages",
        )
        targets = gr.Dataframe(
            headers=TARGET_HEADERS,
            datatype=["str", "str", "str"],
            column_count=3,
            column_limits=(3, 3),
            row_count=len(KPIS),
            row_limits=(len(KPIS), len(KPIS)),
            static_columns=[0],
            interactive=True,
            label="Ziele (Anteile als 0–1, Antwortzeit in ms)",
            elem_id="rollout-targets",
        )
        with gr.Row():
            least = gr.Number(
                value=5, minimum=5, precision=0, label="Gruppenzahlen ab … Nutzern (mind. 5)"
            )
            save = gr.Button(
                "Stufen und Ziele speichern", variant="primary", elem_id="rollout-save"
            )
        saved = gr.Markdown(elem_id="rollout-saved")
        start, end, refresh = _date_inputs("rollout")
        links = gr.Markdown(elem_id="rollout-links")
        per_stage = gr.Dataframe(headers=KPI_HEADERS, label="Je Stufe", interactive=False)
        per_group = gr.Dataframe(headers=KPI_HEADERS, label="Je Gruppe", interactive=False)
        per_week = gr.Dataframe(headers=KPI_HEADERS, label="Verlauf je Woche", interactive=False)
        events = gr.Dataframe(headers=EVENT_HEADERS, label="Änderungen", interactive=False)

    def show(start_value, end_value, request: gr.Request):
        _admin(runtime, request)
        plan = runtime.rollout.load()
        rng = _range(start_value, end_value) if start_value else rollout.range(None, end_value)
        kpis = rollout.kpis(rng)
        query = f"?start={rng.start.isoformat()}&end={rng.end.isoformat()}"
        link = (
            f"[Bericht für das KI-Board (zum Drucken)]({REPORT_PATH}.html{query}) · "
            f"[als CSV]({REPORT_PATH}.csv{query})"
        )
        log = pd.DataFrame(
            [
                [
                    e["created_at"][:19].replace("T", " "),
                    e["actor"],
                    str(e["before"]),
                    str(e["after"]),
                ]
                for e in rollout.events()[:20]
            ],
            columns=EVENT_HEADERS,
        )
        return (
            _stage_frame(plan),
            _target_frame(plan),
            plan.min_group_users,
            rng.start.isoformat(),
            rng.end.isoformat(),
            link,
            kpi_frame(kpis, kpis.stages),
            kpi_frame(kpis, kpis.groups),
            kpi_frame(kpis, kpis.weeks),
            log,
        )

    outputs = [stages, targets, least, start, end, links, per_stage, per_group, per_week, events]
    gr.on([tab.select, refresh.click], show, [start, end], outputs, api_name=False)

    def store(stage_rows, target_rows, least_value, request: gr.Request):
        who = _admin(runtime, request)
        try:
            rollout.save(plan_from_tables(stage_rows, target_rows, least_value), who.user or "")
        except RolloutError as exc:  # the admin's edits stay in the tables to fix
            raise gr.Error(f"Nicht gespeichert: {exc}") from exc
        return "Gespeichert. Jede Instanz wendet die Stufen binnen weniger Sekunden an."

    gr.on([save.click], store, [stages, targets, least], [saved], api_name=False).success(
        show, [start, end], outputs, api_name=False
    )
