"""The scale-decision report for the KI-Board: one printable HTML page (no script, no user ids)
and the same figures as CSV for Excel, drawn from rollout_report.RolloutKpis."""

from __future__ import annotations

import csv
import io
from html import escape

from assistant.admin.gaps import _cell
from assistant.admin.rollout_report import TOO_FEW, KpiRow, RolloutKpis, _fmt, status
from assistant.records.rollout import KPIS


def _mark(met: bool | None) -> str:
    return {True: "✔ erreicht", False: "✘ nicht erreicht", None: "–"}[met]


CSV_HEADERS = ["Abschnitt", "Stufe", "Gruppe", "von", "bis"]
CSV_HEADERS += ["Kennzahl", "Wert", "Ziel", "Basis", "Status"]


def _kpi_lines(kpis: RolloutKpis) -> list[list]:
    lines = []
    targets = kpis.plan.targets
    for section, rows in (("Stufe", kpis.stages), ("Gruppe", kpis.groups), ("Woche", kpis.weeks)):
        for row in rows:
            span = [section, row.stage, row.group, row.start.isoformat(), row.end.isoformat()]
            for kpi, value in row.values.items():
                s = status(kpi, value, targets)
                if row.suppressed:
                    figures = [TOO_FEW, _fmt(kpi, s["target"]), _fmt(kpi, s["baseline"]), TOO_FEW]
                else:
                    figures = [_fmt(kpi, value), _fmt(kpi, s["target"]), _fmt(kpi, s["baseline"])]
                    figures.append(_mark(s["met"]))
                lines.append([*span, KPIS[kpi][0], *figures])
    return lines


def report_csv(kpis: RolloutKpis) -> bytes:
    """The report as one table for Excel (UTF-8 with BOM, `;`), formula-like cells defused."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    lines = [CSV_HEADERS, *_kpi_lines(kpis)]
    empty = ["", "", "", ""]
    for gap in kpis.gaps:
        owner = gap.owner or "kein passendes Dokument"
        lines.append(["Wissenslücke", *empty, gap.question, gap.count, "", "", owner])
    for item in kpis.open_items():
        lines.append(["Offener Punkt", *empty, item, "", "", "", ""])
    writer.writerows([_cell(c) for c in line] for line in lines)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;color:#111;max-width:1000px;margin:24px auto;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:22px 0 6px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{border:1px solid #ccc;padding:4px 6px;
text-align:left;vertical-align:top}th{background:#f1f5f9}td.num{text-align:right}
.ok{color:#166534}.miss{color:#b91c1c}.muted{color:#6b7280}.meta{color:#374151}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}tr{break-inside:avoid}
.noprint{display:none}}
"""


def _kpi_table(rows: list[KpiRow], targets: dict, with_group: bool) -> str:
    head = "<th>Stufe</th>" + ("<th>Gruppe</th>" if with_group else "") + "<th>Zeitraum</th>"
    head += "<th>Nutzer</th><th>Fragen</th>" + "".join(
        f"<th>{escape(KPIS[k][0])}</th>" for k in KPIS
    )
    body = []
    for row in rows:
        cells = [escape(row.stage)] + ([escape(row.group)] if with_group else [])
        cells.append(f"{row.start:%d.%m.%Y}–{row.end:%d.%m.%Y}")
        if row.suppressed:
            cells.append(f'<span class="muted">{TOO_FEW}</span>')
            body.append(
                "<tr><td>"
                + "</td><td>".join(cells)
                + f'</td><td colspan="{len(KPIS) + 1}"></td></tr>'
            )
            continue
        cells += [str(row.users), str(row.questions)]
        for kpi, value in row.values.items():
            met = status(kpi, value, targets)["met"]
            css = {True: "ok", False: "miss", None: ""}[met]
            cells.append(f'<span class="{css}">{escape(_fmt(kpi, value))}</span>')
        body.append("<tr><td>" + "</td><td>".join(cells) + "</td></tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


# Long: one HTML page, section after section, as the KI-Board reads it.
def report_html(kpis: RolloutKpis, generated: str = "") -> str:
    """The scale-decision report as one printable HTML page (no user ids, no script)."""
    t = kpis.plan.targets
    stages = (
        "".join(
            f"<tr><td>{escape(s.name)}</td><td>{escape(', '.join(s.groups))}</td>"
            f"<td>{s.start:%d.%m.%Y}</td></tr>"
            for s in kpis.plan.stages
        )
        or '<tr><td colspan="3">Keine Stufen: der Assistent steht allen offen.</td></tr>'
    )
    kpi_rows = []
    for kpi, (label, better) in KPIS.items():
        value = kpis.totals.get(kpi)
        s = status(kpi, value, t)
        css = {True: "ok", False: "miss", None: ""}[s["met"]]
        kpi_rows.append(
            f"<tr><td>{escape(label)}</td><td>{'höher' if better == 'higher' else 'niedriger'} "
            f"ist besser</td><td>{_fmt(kpi, s['baseline'])}</td><td>{_fmt(kpi, s['target'])}</td>"
            f'<td class="{css}">{_fmt(kpi, value)}</td><td class="{css}">{_mark(s["met"])}</td></tr>'
        )
    gaps = (
        "".join(
            f"<tr><td>{escape(g.question)}</td><td class='num'>{g.count}</td>"
            f"<td>{escape(g.title or 'kein passendes Dokument')}</td><td>{escape(g.owner or '–')}</td></tr>"
            for g in kpis.gaps
        )
        or '<tr><td colspan="4">Keine Wissenslücken im Zeitraum.</td></tr>'
    )
    incidents = (
        "".join(
            f"<tr><td>{escape(i['date'])}</td><td>{escape(i['question'])}</td><td>{escape(i['comment'])}</td></tr>"
            for i in kpis.incidents
        )
        or '<tr><td colspan="3">Keine negativen Bewertungen mit Kommentar.</td></tr>'
    )
    items = "".join(f"<li>{escape(i)}</li>" for i in kpis.open_items()) or "<li>Keine.</li>"
    current = kpis.current.name if kpis.current else "keine (alle Nutzer)"
    users = kpis.totals["users"]
    return f"""<!doctype html><html lang="de"><head><meta charset="utf-8">
<title>KI-Assistent: Bericht zur Skalierungsentscheidung</title><style>{_CSS}</style></head><body>
<h1>KI-Rollen-Assistent · Bericht zur Skalierungsentscheidung für das KI-Board</h1>
<p class="meta">Zeitraum {kpis.range.start:%d.%m.%Y} – {kpis.range.end:%d.%m.%Y} · aktuelle Stufe:
<b>{escape(current)}</b>{" · erstellt " + escape(generated) if generated else ""}</p>
<h2>Stufen</h2><table><tr><th>Stufe</th><th>Gruppen</th><th>ab</th></tr>{stages}</table>
<h2>Nutzung</h2><table><tr><th>Fragen</th><th>Nutzer (angemeldet)</th><th>Bewertungen</th></tr>
<tr><td class="num">{kpis.totals["questions"]}</td><td class="num">{users if users is not None else TOO_FEW}</td>
<td class="num">{kpis.totals.get("ratings", 0)}</td></tr></table>
<h2>Kennzahlen gegen Ziele</h2><table><tr><th>Kennzahl</th><th>Richtung</th><th>Basiswert</th>
<th>Ziel</th><th>Ist</th><th>Status</th></tr>{"".join(kpi_rows)}</table>
<h2>Je Stufe</h2>{_kpi_table(kpis.stages, t, False)}
<h2>Je Gruppe</h2>{_kpi_table(kpis.groups, t, True)}
<p class="muted">Gruppenzahlen erst ab {kpis.plan.min_group_users} verschiedenen Nutzern; Bewertungen
zählen für die Gruppen der Bewertenden (ohne Nutzerkennung).</p>
<h2>Verlauf je Woche</h2>{_kpi_table(kpis.weeks, t, True)}
<h2>Wichtigste Wissenslücken</h2><table><tr><th>Frage</th><th>Anzahl</th><th>Dokument</th>
<th>Verantwortlich</th></tr>{gaps}</table>
<h2>Vorfälle (negative Bewertungen mit Kommentar)</h2><table><tr><th>Datum</th><th>Frage</th>
<th>Kommentar</th></tr>{incidents}</table>
<h2>Offene Punkte</h2><ul>{items}</ul>
</body></html>"""
