"""Admin analytics over real HTTP: an app subprocess on a small corpus with a seeded database.

JSON usage numbers, bad dates, the knowledge-gap CSV, promoting feedback into the evaluation set,
latency recorded by a real question, and nobody but admins gets any of it."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect
from test_analytics import CITATION, GAP_CORPUS, seed_audit, seed_feedback

from assistant.records.audit import AuditLog
from assistant.records.feedback import FeedbackStore
from assistant.records.regression import load_promoted
from e2e.conftest import JWT_SECRET, make_token, start_server, stop_server

ADMIN = {"authorization": f"Bearer {make_token('hr-admin', ('admin',))}"}
EMPLOYEE = {"authorization": f"Bearer {make_token('emp-7', ('hr',))}"}
SECRET_USER = "u-secret-42"  # never shown: ASSISTANT_ANALYTICS_SHOW_USERS is off

TODAY = datetime.now(UTC).date()
D1, D2, D3 = (TODAY - timedelta(days=n) for n in (6, 5, 4))  # inside retention, before today
D0 = TODAY - timedelta(days=8)  # answered questions naming what no document mentions
SALARY = [
    "Wie viel verdient ein AI Product Owner bei uns?",
    "Gehalt AI Product Owner?",
    "How much does an AI product owner earn here?",
]


def at(day, hour=12):
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def seed(db_url: str) -> dict:
    """Usage on D1..D3 (nothing on D2), gap questions, thumbs up and down; returns feedback ids."""
    audit, feedback = AuditLog(db_url, retention_days=90), FeedbackStore(db_url)
    seed_audit(
        audit,
        at(D1, 8),
        "Welche Bahnfahrten werden erstattet?",
        True,
        ["reisekosten.md"],
        400,
        SECRET_USER,
    )
    seed_audit(audit, at(D1, 9), "Konferenzgebühren?", True, ["reisekosten.md"], 600, SECRET_USER)
    for n, question in enumerate(SALARY):
        seed_audit(audit, at(D1 if n < 2 else D3, 10 + n), question, False, [], 200, SECRET_USER)
    seed_audit(audit, at(D3, 15), "Gehalt AI Product Owner?", False, [], 300, SECRET_USER)
    for hour, question, names in [
        (9, "Is FlixBus reimbursed for AI conferences?", ["FlixBus"]),
        (10, "Werden Fahrten mit dem Flixbus erstattet?", ["Flixbus"]),
        (11, "Zahlt die Firma ein Hotel bei Motel One?", ["Motel One"]),
    ]:
        seed_audit(
            audit,
            at(D0, hour),
            question,
            True,
            ["reisekosten.md"],
            300,
            SECRET_USER,
            json.dumps(names),
        )
    ids = {
        "down": seed_feedback(
            feedback, at(D3, 9), -1, "Werden Flüge zu KI-Konferenzen erstattet?", comment="fehlt"
        ),
        "up_api": seed_feedback(
            feedback, at(D3, 10), 1, "Werden Konferenzgebühren erstattet?", citations=[CITATION]
        ),
        "up_browser": seed_feedback(
            feedback, at(D3, 11), 1, "Welche Reisekosten übernimmt die Firma?", citations=[CITATION]
        ),
    }
    # Past the retention period (90 days): purged when the server starts.
    old = datetime.now(UTC) - timedelta(days=100)
    seed_audit(audit, old, "Uralte Frage im Protokoll?", False, [], 100, SECRET_USER)
    ids["expired"] = seed_feedback(feedback, old, -1, "Uralte Frage?", comment="alt")
    audit.engine.dispose()
    feedback.engine.dispose()
    return ids


@pytest.fixture(scope="module")
def analytics_server(tmp_path_factory):
    """(base URL, app database URL, seeded feedback ids)."""
    tmp = tmp_path_factory.mktemp("analytics-server")
    corpus = tmp / "corpus"
    corpus.mkdir()
    for name, text in GAP_CORPUS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    data = tmp / "data"
    data.mkdir()
    db_url = f"sqlite:///{(data / 'app.sqlite').resolve()}"
    ids = seed(db_url)
    env = {"ASSISTANT_JWT_SECRET": JWT_SECRET, "ASSISTANT_RATE_LIMIT_PER_MINUTE": "1000"}
    for key in ("ASSISTANT_DATABASE_URL", "ASSISTANT_FEEDBACK_DB_URL", "ASSISTANT_CHROMA_URL"):
        env[key] = ""
    proc, url = start_server(corpus, data, env)
    yield url, db_url, ids
    stop_server(proc)


def get(url, headers=ADMIN, **params):
    return httpx.get(url, headers=headers, params=params, timeout=120)


def test_usage_json_with_exact_numbers(analytics_server):
    url, _, _ = analytics_server
    response = get(f"{url}/api/admin/analytics", start=D1.isoformat(), end=D3.isoformat())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["summary"] == {
        "days": 3,
        "questions": 6,
        "answered": 2,
        "unanswered": 4,
        "answered_share": 0.333,
        "thumbs_up": 2,
        "thumbs_down": 1,
        "median_latency_ms": 250.0,  # of 200, 200, 200, 300, 400, 600
    }
    assert [(d["date"], d["questions"], d["unanswered"]) for d in body["daily"]] == [
        (D1.isoformat(), 4, 2),
        (D2.isoformat(), 0, 0),
        (D3.isoformat(), 2, 2),
    ]
    assert body["top_documents"] == [
        {"source": "reisekosten.md", "title": "Reisekosten für KI-Konferenzen", "answers": 2}
    ]
    assert SECRET_USER not in response.text


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"start": "2025-13-01"}, "start: '2025-13-01' is not a date"),
        ({"end": "gestern"}, "end: 'gestern' is not a date"),
        ({"start": "2025-03-12", "end": "2025-03-10"}, "is before start"),
    ],
)
def test_bad_dates_are_422(analytics_server, params, fragment):
    url, _, _ = analytics_server
    for path in ("/api/admin/analytics", "/api/admin/gaps.csv"):
        response = get(url + path, **params)
        assert response.status_code == 422, response.text
        assert fragment in response.json()["detail"]


def test_gap_csv_export(analytics_server):
    url, _, _ = analytics_server
    response = get(f"{url}/api/admin/gaps.csv", start=D1.isoformat(), end=D3.isoformat())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert [(r["Anzahl"], r["Unbeantwortet"], r["Daumen runter"]) for r in rows] == [
        ("4", "4", "0"),
        ("1", "0", "1"),
    ]
    salary, flights = rows
    assert set(salary["Beispiele"].split(" | ")) == set(SALARY)
    assert (salary["Dokument"], salary["Verantwortlich"]) == ("gehalt.md", "HR – Eva Marx")
    assert (flights["Dokument"], flights["Kommentare"]) == ("reisekosten.md", "fehlt")
    assert "Gefragt von" not in rows[0] and SECRET_USER not in response.content.decode("utf-8-sig")


def test_promote_feedback_into_the_eval_set(analytics_server):
    url, db_url, ids = analytics_server
    promote = f"{url}/api/admin/feedback/{{}}/promote"
    assert httpx.post(promote.format(99999), headers=ADMIN, timeout=60).status_code == 404
    refused = httpx.post(promote.format(ids["down"]), headers=ADMIN, timeout=60)
    assert refused.status_code == 409 and "thumbs-down" in refused.json()["detail"]
    done = httpx.post(promote.format(ids["up_api"]), headers=ADMIN, timeout=60)
    assert done.status_code == 200, done.text
    item = done.json()
    assert item["id"] == f"fb-{ids['up_api']}" and item["answerable"] is True
    assert item["expected"][0]["source"] == "reisekosten.md"
    again = httpx.post(promote.format(ids["up_api"]), headers=ADMIN, timeout=60)
    assert again.json() == item
    listed = get(f"{url}/api/admin/regression").json()
    assert item["id"] in [i["id"] for i in listed]
    assert item["id"] in [i.id for i in load_promoted(db_url)]  # what `assistant eval` reads


def test_a_real_question_records_its_latency(analytics_server):
    url, _, _ = analytics_server
    asked = httpx.post(
        f"{url}/api/ask", json={"question": "Werden Bahnfahrten erstattet?"}, timeout=60
    )
    assert asked.status_code == 200, asked.text
    today = get(f"{url}/api/admin/analytics", start=TODAY.isoformat(), end=TODAY.isoformat())
    summary = today.json()["summary"]
    assert summary["questions"] == 1 and summary["median_latency_ms"] is not None


def test_names_no_document_mentions_as_json(analytics_server):
    """Counted per name (case folded, the newest spelling first among equals), no user id."""
    url, _, _ = analytics_server
    response = get(f"{url}/api/admin/unmentioned", start=D0.isoformat(), end=D3.isoformat())
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["start"], body["end"]) == (D0.isoformat(), D3.isoformat())
    assert [(n["name"], n["count"], n["refused"], n["last_seen"]) for n in body["names"]] == [
        ("Flixbus", 2, 0, D0.isoformat()),
        ("Motel One", 1, 0, D0.isoformat()),
    ]
    assert body["names"][0]["examples"] == [
        "Werden Fahrten mit dem Flixbus erstattet?",
        "Is FlixBus reimbursed for AI conferences?",
    ]
    assert SECRET_USER not in response.text
    later = get(f"{url}/api/admin/unmentioned", start=D1.isoformat(), end=D3.isoformat())
    assert later.json()["names"] == []
    bad = get(f"{url}/api/admin/unmentioned", start="2026-13-01")
    assert bad.status_code == 422 and "start" in bad.text


def test_a_real_question_records_the_names_no_document_mentions(analytics_server):
    """Asked over HTTP, a question naming a bus company the documents never name is recorded
    with that name, whether it is answered or refused."""
    url, _, _ = analytics_server
    question = "Does the company reimburse Greyhound tickets to AI conferences?"
    asked = httpx.post(f"{url}/api/ask", json={"question": question}, timeout=60)
    assert asked.status_code == 200, asked.text
    assert asked.json()["unmentioned"] == ["Greyhound"]
    today = get(f"{url}/api/admin/unmentioned", start=TODAY.isoformat(), end=TODAY.isoformat())
    assert [(n["name"], n["examples"]) for n in today.json()["names"]] == [
        ("Greyhound", [question])
    ]


@pytest.mark.parametrize(("headers", "status"), [({}, 401), (EMPLOYEE, 403)])
def test_only_admins_get_analytics(analytics_server, headers, status):
    url, _, ids = analytics_server
    for method, path in [
        ("GET", "/api/admin/analytics"),
        ("GET", "/api/admin/gaps"),
        ("GET", "/api/admin/gaps.csv"),
        ("GET", "/api/admin/unmentioned"),
        ("GET", "/api/admin/regression"),
        ("POST", f"/api/admin/feedback/{ids['up_browser']}/promote"),
    ]:
        response = httpx.request(method, url + path, headers=headers, timeout=30)
        assert response.status_code == status, (path, response.text)
        assert "Gehalt" not in response.text and "reisekosten" not in response.text
    assert f"fb-{ids['up_browser']}" not in [i.id for i in load_promoted(analytics_server[1])]


# --- the admin page in Chromium -----------------------------------------------------------------


def open_tab(page, name: str, loaded: str) -> None:
    """Open a tab and wait until what it computes on opening (the default range) is shown."""
    page.get_by_role("tab", name=name).click()
    page.locator(loaded).filter(visible=True).first.wait_for(timeout=120_000)


def set_range(page, prefix: str, start, end) -> None:
    for which, day in (("start", start), ("end", end)):
        field = page.locator(f"#{prefix}-{which} input").first
        field.fill(day.isoformat())
        field.press("Enter")
    page.locator(f"#{prefix}-refresh").click()


def test_charts_gap_csv_and_promote_on_the_admin_page(analytics_server, new_context, tmp_path):
    url, db_url, ids = analytics_server
    page = new_context().new_page()
    page.goto(
        f"{url}/admin/login?token={make_token('hr-admin', ('admin',))}",
        wait_until="domcontentloaded",
    )

    # Charts: the seeded days, drawn by Vega as SVG marks.
    open_tab(page, "Auswertung", "#analytics-summary strong")
    set_range(page, "analytics", D1, D3)
    summary = page.locator("#analytics-summary")
    summary.get_by_text(f"{D1:%d.%m.%Y} – {D3:%d.%m.%Y}").wait_for(timeout=120_000)
    shown = summary.inner_text()
    assert "6 Fragen" in shown and "33 % beantwortet" in shown and "2 hilfreich" in shown
    marks = {}
    for plot, mark in (
        ("plot-questions", "rect"),
        ("plot-answered-share", "rect"),
        ("plot-feedback", "rect"),
        ("plot-latency", "rect"),
        ("plot-top-documents", "rect"),
    ):
        paths = page.locator(f"#{plot} svg g.mark-{mark} path")
        paths.first.wait_for(state="attached", timeout=60_000)
        marks[plot] = paths.count()
    assert all(marks.values()), marks
    shot = tmp_path / "admin-analytics.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    labels = page.locator("#plot-top-documents svg text").all_text_contents()
    assert any(label.startswith("Reisekosten für KI") for label in labels), labels

    # Knowledge gaps: the groups, and the CSV behind the link.
    open_tab(page, "Wissenslücken", "#gaps-csv a")
    set_range(page, "gaps", D1, D3)
    # The link follows the range once the groups for it are computed.
    link = page.locator("#gaps-csv a", has_text=f"{D1:%d.%m.%Y} – {D3:%d.%m.%Y}")
    link.wait_for(timeout=120_000)
    page.locator("#gaps-table").get_by_text("HR – Eva Marx").first.wait_for()
    assert "2 Gruppen" in page.locator("#gaps-status").inner_text()
    page.screenshot(path=str(tmp_path / "admin-gaps.png"), full_page=True)
    with page.expect_download() as download:
        link.click()
    data = Path(download.value.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert [(r["Anzahl"], r["Verantwortlich"]) for r in rows] == [
        ("4", "HR – Eva Marx"),
        ("1", "Finanzen – Jana Roth"),
    ]
    assert download.value.suggested_filename == f"wissensluecken_{D1}_{D3}.csv"
    assert "Keine Fragen nach Namen" in page.locator("#unmentioned-status").inner_text()

    # The names no document mentions, in a range that holds them.
    set_range(page, "gaps", D0, D3)
    page.locator("#gaps-csv a", has_text=f"{D0:%d.%m.%Y} – {D3:%d.%m.%Y}").wait_for()
    names = page.locator("#unmentioned-table")
    names.get_by_text("Motel One").filter(visible=True).first.wait_for()
    assert "2 Namen" in page.locator("#unmentioned-status").inner_text()
    assert "Werden Fahrten mit dem Flixbus erstattet?" in names.inner_text()
    page.screenshot(path=str(tmp_path / "admin-unmentioned.png"), full_page=True)

    # Regression set: pick a thumbs-up answer, promote it, and eval reads it.
    wanted = "Welche Reisekosten übernimmt die Firma?"
    open_tab(page, "Regressionstests", f"#regression-candidates >> text={wanted}")
    page.locator("#regression-candidates").get_by_text(wanted).filter(visible=True).first.click()
    # The row's feedback number lands in the field (after a round trip to the server).
    expect(page.locator("#promote-id textarea")).to_have_value(str(ids["up_browser"]))
    page.locator("#promote").click()
    item = f"fb-{ids['up_browser']}"
    page.locator("#promote-status").get_by_text(item, exact=False).wait_for(timeout=60_000)
    page.locator("#regression-promoted").get_by_text(item).filter(visible=True).first.wait_for()
    page.screenshot(path=str(tmp_path / "admin-regression.png"), full_page=True)
    assert item in [i.id for i in load_promoted(db_url)]


def test_the_server_purges_text_past_the_retention_period(analytics_server):
    url, db_url, ids = analytics_server
    feedback, audit = FeedbackStore(db_url), AuditLog(db_url, retention_days=90)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the purge runs in the background from the start
        row = next(r for r in feedback.all() if r["id"] == ids["expired"])
        if row["question"] == "":
            break
        time.sleep(0.2)
    assert (row["question"], row["comment"], row["rating"]) == ("", "", -1)
    assert "Uralte Frage im Protokoll?" not in [r["question"] for r in audit.rows()]
    everything = get(f"{url}/api/admin/gaps.csv", start=(TODAY - timedelta(days=120)).isoformat())
    assert "Uralte" not in everything.content.decode("utf-8-sig")
