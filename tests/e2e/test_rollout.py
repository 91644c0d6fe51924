"""The rollout over real HTTP: two app processes (replicas, each with its own data dir and store)
sharing one app database. A stage set through one replica's admin API reaches the other without a
restart; pilot members get answers, everyone else the "not yet" line (API, Gradio endpoint, chat
page, widget); bad plans are 422 and change nothing; the board report renders in Chromium."""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from conftest import write_markdown
from playwright.sync_api import expect
from test_rollout import pilot_plan, seed_rollout

from e2e.conftest import JWT_SECRET, make_token, start_server
from e2e.test_browser import BOT, QUESTION, ask

TODAY = datetime.now(UTC).date()
PILOT_START = TODAY - timedelta(days=14)
WAVE_2 = TODAY + timedelta(days=10)
ADMIN = {"authorization": f"Bearer {make_token('hr-admin', ('admin',))}"}
HR = {"authorization": f"Bearer {make_token('pilot-hr-1', ('hr',))}"}
SALES_TOKEN = make_token("sales-1", ("vertrieb",))
SALES = {"authorization": f"Bearer {SALES_TOKEN}"}
QUESTION_TEXT = "Welche Bahnfahrten werden erstattet?"
NOT_YET = f"Der KI-Assistent ist für Ihren Bereich ab {WAVE_2:%d.%m.%Y} verfügbar."


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    """[replica A URL, replica B URL] on one shared app database seeded with pilot usage."""
    tmp = tmp_path_factory.mktemp("rollout")
    corpus = tmp / "corpus"
    write_markdown(corpus / "reisekosten.md")
    shared = tmp / "shared"
    shared.mkdir()
    db_url = f"sqlite:///{(shared / 'app.sqlite').resolve()}"
    seed_rollout(db_url, PILOT_START)
    env = {
        "ASSISTANT_JWT_SECRET": JWT_SECRET,
        "ASSISTANT_SESSION_SECRET": "rollout-replicas-share-this-key-0123456789",
        "ASSISTANT_RATE_LIMIT_PER_MINUTE": "1000",
        "ASSISTANT_DATABASE_URL": "",
        "ASSISTANT_CHROMA_URL": "",
        "ASSISTANT_FEEDBACK_DB_URL": db_url,  # the app database only; each replica its own store
    }
    machines = [tmp / "machine-a", tmp / "machine-b"]
    for machine in machines:
        machine.mkdir()
    with ThreadPoolExecutor(2) as pool:
        started = list(
            pool.map(lambda m: start_server(corpus, m / "data", env, timeout=600), machines)
        )
    yield [url for _, url in started]
    for proc, _ in started:
        proc.terminate()
    for proc, _ in started:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def put_plan(url: str, plan: dict) -> httpx.Response:
    return httpx.put(f"{url}/api/admin/rollout", json=plan, headers=ADMIN, timeout=30)


def api_ask(url: str, headers: dict | None = None, **extra) -> httpx.Response:
    return httpx.post(
        f"{url}/api/ask",
        json={"question": QUESTION_TEXT},
        headers={**(headers or {}), **extra},
        timeout=120,
    )


def gradio_chat(url: str, headers: dict | None = None) -> dict:
    with httpx.Client(headers=headers or {}, timeout=120) as http:
        event = http.post(f"{url}/gradio_api/call/chat", json={"data": [QUESTION_TEXT]}).json()
        stream = http.get(f"{url}/gradio_api/call/chat/{event['event_id']}").text
    data = [line[len("data: ") :] for line in stream.splitlines() if line.startswith("data: ")]
    return json.loads(data[-1])[0]


def until(check, timeout: float = 15.0):
    """Poll `check` until it returns something truthy (a replica's cache lasts a few seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_a_stage_set_on_one_replica_gates_the_other_without_restart(replicas):
    a, b = replicas
    # no plan yet: everyone may ask, as before
    assert api_ask(b, SALES).status_code == 200
    stored = put_plan(a, pilot_plan(PILOT_START))
    assert stored.status_code == 200, stored.text
    assert stored.json()["before"]["stages"] == []
    refused = until(lambda: (r := api_ask(b, SALES)).status_code == 403 and r)
    assert refused, "replica B never saw the stage"
    assert refused.json() == {"detail": NOT_YET, "available_from": WAVE_2.isoformat()}
    english = api_ask(b, SALES, **{"accept-language": "en-GB,en;q=0.9"}).json()["detail"]
    assert english == f"The AI assistant will be available for your area from {WAVE_2.isoformat()}."
    member = api_ask(b, HR)
    assert member.status_code == 200 and member.json()["answered"]
    # no groups at all (anonymous): the line too, not an error
    nobody = api_ask(b)
    assert nobody.status_code == 403 and "ab " in nobody.json()["detail"]
    # Gradio's chat endpoint, alike
    assert gradio_chat(b, SALES) == {
        "error": NOT_YET,
        "status": 403,
        "available_from": WAVE_2.isoformat(),
    }
    assert gradio_chat(b, HR)["answered"]
    # the change log names who changed what, from what to what; B reads it too
    (event,) = httpx.get(f"{b}/api/admin/rollout/events", headers=ADMIN).json()
    assert event["actor"] == "hr-admin" and event["after"]["stages"][0]["name"] == "Pilot"
    current = httpx.get(f"{b}/api/admin/rollout", headers=ADMIN).json()["current_stage"]
    assert current["name"] == "Pilot"


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda p: p["stages"][0].update(start="2.3.2026"), "not a date"),
        (lambda p: p["stages"][0].update(groups=[]), "group list is empty"),
        (lambda p: p["stages"][1].update(start=p["stages"][0]["start"]), "overlap"),
        (lambda p: p["targets"].update(answer_rate={"target": "hoch"}), "not a number"),
        (lambda p: p.update(min_group_users=2), "at least 5"),
    ],
)
def test_a_bad_plan_is_422_with_its_reason_and_changes_nothing(replicas, change, reason):
    a, _ = replicas
    before = httpx.get(f"{a}/api/admin/rollout", headers=ADMIN).json()
    plan = pilot_plan(PILOT_START)
    change(plan)
    response = put_plan(a, plan)
    assert response.status_code == 422 and reason in response.json()["detail"]
    assert httpx.get(f"{a}/api/admin/rollout", headers=ADMIN).json() == before


def test_only_admins_reach_the_rollout_api(replicas):
    a, _ = replicas
    for path in ("", "/kpis", "/events", "/report.html", "/report.csv"):
        assert httpx.get(f"{a}/api/admin/rollout{path}", headers=HR).status_code == 403
        assert httpx.get(f"{a}/api/admin/rollout{path}").status_code == 401
    assert put_plan(a, {"stages": []}).status_code in (200, 422)  # admin: allowed
    assert httpx.put(f"{a}/api/admin/rollout", json={}, headers=HR).status_code == 403
    put_plan(a, pilot_plan(PILOT_START))
    assert "/api/admin/rollout" in httpx.get(f"{a}/openapi.json", headers=ADMIN).json()["paths"]


def test_kpis_suppress_small_groups_and_the_report_renders(replicas, new_context, screenshot):
    a, b = replicas
    assert put_plan(a, pilot_plan(PILOT_START)).status_code == 200
    kpis = httpx.get(f"{b}/api/admin/rollout/kpis", headers=ADMIN, timeout=120).json()
    groups = {g["group"]: g for g in kpis["groups"]}
    assert groups["hr"]["users"] >= 6 and not groups["hr"]["suppressed"]
    assert (
        groups["disposition"]["suppressed"] and groups["disposition"]["note"] == "zu wenige Nutzer"
    )
    assert kpis["stages"][0]["kpis"]["answer_rate"]["target"] == 0.8
    csv = httpx.get(f"{b}/api/admin/rollout/report.csv", headers=ADMIN, timeout=120)
    assert csv.status_code == 200 and csv.text.lstrip("\ufeff").startswith("Abschnitt;")
    assert "secret-" not in csv.text and "secret-" not in json.dumps(kpis)
    # the report in Chromium, as the admin opens it from the admin page
    page = new_context().new_page()
    page.goto(
        f"{b}/admin/login?token={make_token('hr-admin', ('admin',))}", wait_until="domcontentloaded"
    )
    page.goto(f"{b}/api/admin/rollout/report.html", wait_until="domcontentloaded")
    assert "Skalierungsentscheidung" in page.locator("h1").inner_text()
    body = page.locator("body").inner_text()
    for text in (
        "Pilot",
        "Antwortquote",
        "zu wenige Nutzer",
        "Tourenplanung fehlt ganz",
        "Offene Punkte",
    ):
        assert text in body
    assert "secret-" not in page.content()
    screenshot(page, "rollout-report", full_page=True)


def test_chat_page_and_widget_show_the_line_instead_of_an_answer(replicas, new_context, screenshot):
    a, _ = replicas
    assert put_plan(a, pilot_plan(PILOT_START)).status_code == 200
    page = new_context().new_page()
    page.goto(f"{a}/embed/#token={SALES_TOKEN}", wait_until="domcontentloaded")
    page.locator(BOT).first.wait_for(state="visible", timeout=60_000)
    assert NOT_YET in page.locator(BOT).last.inner_text()
    page = new_context().new_page()
    page.goto(f"{a}/", wait_until="domcontentloaded")  # anonymous: no groups
    page.locator(QUESTION).wait_for(state="visible", timeout=60_000)
    page.locator(BOT).first.wait_for(state="visible", timeout=60_000)
    ask(page, QUESTION_TEXT)  # asking anyway: the line again, no answer
    page.wait_for_function(
        "() => document.querySelectorAll(\"#chat [data-testid='bot']\").length >= 2", timeout=60_000
    )
    assert "verfügbar" in page.locator(BOT).last.inner_text()
    assert page.locator("#chat .source-card").count() == 0
    screenshot(page, "rollout-chat-not-yet")


def test_hr_sets_the_stages_in_the_admin_tab(replicas, new_context):
    a, b = replicas
    assert put_plan(a, {"stages": []}).status_code == 200
    page = new_context().new_page()
    page.goto(
        f"{a}/admin/login?token={make_token('hr-admin', ('admin',))}", wait_until="domcontentloaded"
    )
    page.get_by_role("tab", name="Einführung").click()
    page.locator("#rollout-links a").first.wait_for(state="visible")

    def edit(table: str, col: int, text: str) -> None:
        cell = page.locator(f"#{table} [data-testid='cell-0-{col}']")
        cell.dblclick()
        # type only once the cell's editor has the focus (else the first key is lost)
        expect(cell.locator("input, textarea").first).to_be_focused(timeout=30_000)
        page.keyboard.press("Control+A")  # replaces what the cell held
        page.keyboard.type(text)
        page.keyboard.press("Enter")
        # the table holds the value before the next edit (a loaded machine is slow to commit it)
        expect(cell).to_contain_text(text, timeout=30_000)

    for col, text in enumerate(["Pilot", "hr, disposition", PILOT_START.isoformat()]):
        edit("rollout-stages", col, text)
    edit("rollout-targets", 1, "0,8")  # a German decimal comma is read as a number
    page.locator("#rollout-save").click()
    expect(page.locator("#rollout-saved")).to_contain_text("Gespeichert.", timeout=60_000)
    plan = httpx.get(f"{b}/api/admin/rollout", headers=ADMIN).json()["plan"]
    assert plan["stages"] == [
        {"name": "Pilot", "groups": ["disposition", "hr"], "start": PILOT_START.isoformat()}
    ]
    assert plan["targets"] == {"answer_rate": {"target": 0.8, "baseline": None}}
    edit("rollout-stages", 2, "morgen")
    page.locator("#rollout-save").click()
    page.get_by_text("Nicht gespeichert").first.wait_for(state="visible", timeout=60_000)
    assert httpx.get(f"{b}/api/admin/rollout", headers=ADMIN).json()["plan"] == plan
