"""Who is signed in, through a real browser: the widget's token and the login page.

The widget runs on the "intranet" origin (`intranet`, allowed to frame the app) against the browser
tests' app; the login page against a second app process on the API tests' store, started with one
login user in group hr. The HR-only document is the yardstick: quoted to HR members only.
"""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from e2e.conftest import make_token, running_app
from e2e.test_browser import ANSWER_TIMEOUT, BOT, CARD, QUESTION, ask
from e2e.test_identity import HR_DOC, SALARY, sources

LOGIN_USER, LOGIN_PASSWORD = "hanna.hr", "Gehaltsband-2025!"
# The source card's link to the HR document (its readable view; signed for this reader).
HR_LINK = f"a.open-document[href*='/view/{HR_DOC}']"
SIGNIN_REFUSED = "Anmeldung abgelehnt"


def final_answer(frame) -> str:
    """Wait until the last answer is complete (streamed text ends in "…"); its text."""
    frame.wait_for_function(
        """() => {
            const bots = document.querySelectorAll("#chat [data-testid='bot']");
            const last = bots[bots.length - 1];
            const text = last ? last.innerText.trim() : '';
            return text && !text.endsWith('…');
        }""",
        timeout=ANSWER_TIMEOUT,
    )
    return frame.locator(BOT).last.inner_text()


def intranet_page(app_url: str, token: str | None) -> str:
    attribute = f' data-token="{token}"' if token else ""
    return (
        '<!doctype html><html lang="de"><head><meta charset="utf-8"><title>Intranet</title>'
        "</head><body><h1>Nordwerk Intranet</h1>"
        f'<script src="{app_url}/widget.js"{attribute} defer></script></body></html>'
    )


def open_widget(page, intranet, app_url: str, name: str, token: str | None):
    """The intranet page with the widget (and token) opened; the chat's frame once it is ready."""
    intranet.pages[f"/{name}.html"] = intranet_page(app_url, token)
    page.goto(f"{intranet.origin}/{name}.html", wait_until="domcontentloaded")
    page.locator("#ki-assistent-button").click()
    page.frame_locator("#ki-assistent-frame").locator(QUESTION).wait_for(
        state="visible", timeout=60_000
    )
    return page.locator("#ki-assistent-frame").element_handle().content_frame()


def test_widget_token_lets_an_hr_member_see_the_hr_document(
    browser_server, intranet, page, screenshot
):
    url, _ = browser_server
    token = make_token(sub="widget-hr-1", groups=["hr"])
    requests: list[tuple[str, str]] = []
    page.on("request", lambda r: requests.append((r.url, r.headers.get("referer") or "")))
    frame = open_widget(page, intranet, url, "widget-hr", token)
    # The token travels in the fragment of the frame's URL ...
    assert (
        page.locator("#ki-assistent-frame").get_attribute("src").startswith(f"{url}/embed/#token=")
    )
    ask(frame, SALARY)
    frame.locator(CARD).first.wait_for(state="visible", timeout=ANSWER_TIMEOUT)
    answer = final_answer(frame)
    assert "165.000" in answer
    assert frame.locator(BOT).last.locator(HR_LINK).count() >= 1
    screenshot(page, "signin-widget-hr")
    # ... which browsers never send: no request line or Referer the servers saw carries it.
    assert requests and not [r for r in requests if token in r[0] or token in r[1]]


@pytest.mark.parametrize(
    ("case", "token", "reason"),
    [
        ("no-token", None, None),
        ("expired", make_token(groups=["hr"], ttl_s=-120), "die Anmeldung ist abgelaufen"),
        (
            "forged",
            make_token(groups=["hr"], secret="not-the-intranet-secret-at-all-0123456789"),
            "die Anmeldung ist ungültig (falsche Signatur)",
        ),
    ],
    ids=["no-token", "expired", "forged"],
)
def test_widget_without_a_valid_token_never_quotes_the_hr_document(
    browser_server, intranet, page, screenshot, case, token, reason
):
    url, _ = browser_server
    frame = open_widget(page, intranet, url, f"widget-{case}", token)
    if reason:
        # Said at once, before any question ...
        notice = frame.locator(BOT).first
        notice.wait_for(state="visible", timeout=30_000)
        assert f"{SIGNIN_REFUSED}: {reason}." in notice.inner_text()
        assert "über das Intranet" in notice.inner_text()
    ask(frame, SALARY)
    answer = final_answer(frame)
    if reason:
        # ... and again instead of an answer.
        assert answer.startswith(f"{SIGNIN_REFUSED}: {reason}.")
        assert frame.locator(CARD).count() == 0
    else:
        assert SIGNIN_REFUSED not in answer
    assert "165.000" not in answer
    assert frame.locator(HR_LINK).count() == 0
    assert HR_DOC not in frame.locator("#chat").inner_html()
    screenshot(page, f"signin-widget-{case}")


# --- the login page (ASSISTANT_LOGIN_USERS) ----------------------------------------------------


@pytest.fixture(scope="module")
def login_app(server_store, server):
    """A second app on the API tests' store (filled by `server`) with one login user in hr."""
    users = {
        "ASSISTANT_LOGIN_USERS": f"{LOGIN_USER}:{LOGIN_PASSWORD}:hr",
        "ASSISTANT_JWT_SECRET": "",
        "ASSISTANT_RATE_LIMIT_PER_MINUTE": "1000",
    }
    with running_app(*server_store, users) as url:
        yield url


def log_in(page, password: str) -> None:
    # Gradio's login form (its labels follow the browser language); it empties the user name
    # after a failed attempt, so both fields are filled each time.
    page.locator("input[type=text]").fill(LOGIN_USER)
    page.locator("input[type=password]").fill(password)
    page.locator("button.primary").click()


def test_login_user_sees_the_hr_document_and_anonymous_callers_do_not(
    login_app, server_store, page, screenshot
):
    page.goto(login_app + "/", wait_until="domcontentloaded")
    page.locator("input[type=password]").wait_for(state="visible", timeout=30_000)
    assert page.locator(QUESTION).count() == 0  # no chat before signing in

    log_in(page, "falsches-passwort")
    page.get_by_text("Falsche Anmeldedaten").wait_for(state="visible", timeout=30_000)
    assert page.locator(QUESTION).count() == 0
    screenshot(page, "signin-login-refused")

    log_in(page, LOGIN_PASSWORD)
    page.locator(QUESTION).wait_for(state="visible", timeout=60_000)
    ask(page, SALARY)
    page.locator(CARD).first.wait_for(state="visible", timeout=ANSWER_TIMEOUT)
    assert "165.000" in final_answer(page)
    assert page.locator(BOT).last.locator(HR_LINK).count() >= 1
    screenshot(page, "signin-login-hr")

    anonymous = httpx.post(login_app + "/api/ask", json={"question": SALARY}, timeout=60)
    assert anonymous.status_code == 200
    assert HR_DOC not in sources(anonymous.json())
    assert "165.000" not in anonymous.json()["answer"]

    _, data_dir = server_store
    with sqlite3.connect(data_dir / "app.sqlite") as db:
        rows = db.execute(
            "select via, groups, channel from audit_log where user_id = ?", (LOGIN_USER,)
        ).fetchall()
    assert ("login", "all,hr", "chat") in rows
