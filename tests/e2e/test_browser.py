"""The chat, the widget and the embedding rules in a real browser (Debian's Chromium via Playwright).

One app server for the whole module (`browser_server`), started on a copy of the shipped corpus with
the "intranet" origin (`intranet`, its port reserved up front) as the only allowed embedding origin.
Screenshots of the key points go to artifacts/screenshots/.
"""

from __future__ import annotations

import html
import http.client
import json
import re
import sqlite3
import time
from urllib.parse import urlsplit

import httpx

QUESTION = "#question textarea"
BOT = "#chat [data-testid='bot']"
USER = "#chat [data-testid='user']"
CARD = "#chat .source-card"
# Gradio's own feedback buttons under a bot message; labelled in the browser's language.
DISLIKE = re.compile(r"^(Dislike|Gefällt mir nicht)$")
ANSWER_TIMEOUT = 60_000


def open_chat(page, url: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    page.locator(QUESTION).wait_for(state="visible", timeout=60_000)


def ask(scope, question: str, confirm_s: float = 15.0) -> None:
    """Type a question and send it (scope: a page or a frame locator).

    The send is confirmed: the app's first step shows the question in the chat and empties the box
    in one update. A click that lands before the page's handlers answer is lost without a trace, so
    it is sent again, once, only if neither happened within `confirm_s` (never a second copy).
    """
    box, asked = scope.locator(QUESTION), scope.locator(USER)
    before = asked.count()
    for _ in range(2):
        box.fill(question)
        scope.locator("#send").click()
        deadline = time.monotonic() + confirm_s
        while time.monotonic() < deadline:
            if asked.count() > before or not box.input_value():
                return
            time.sleep(0.1)
    raise AssertionError(f"the question never reached the chat: {question[:60]!r}")


def wait_for_cards(scope, at_least: int = 1) -> None:
    """Until the final answer (with its source cards) is shown."""
    scope.locator(CARD).nth(at_least - 1).wait_for(state="visible", timeout=ANSWER_TIMEOUT)


def wait_for_toast(page, text: str) -> None:
    """Until a toast with `text` is shown, its fade-in over (so a screenshot shows it)."""
    page.get_by_text(text).first.wait_for(state="visible", timeout=15_000)
    page.wait_for_function(
        """(wanted) => {
            const text = [...document.querySelectorAll("[data-testid='toast-text']")]
                .find(e => e.textContent.includes(wanted));
            const body = text && (text.closest('.toast-body') || text);
            return body && getComputedStyle(body).opacity === '1' && !body.getAnimations().length;
        }""",
        arg=text,
        timeout=15_000,
    )


# --- 1. streaming, markers, source cards ---------------------------------------------------------


def test_answer_streams_then_shows_cited_sources(browser_server, page, screenshot):
    url, _ = browser_server
    # Offline: every request the page makes goes to the assistant itself (no CDN, fonts, analytics).
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    open_chat(page, url + "/")
    screenshot(page, "01-start")
    # Record every state of the last bot message as the DOM changes.
    page.evaluate(
        """() => {
            window.__states = [];
            const chat = document.querySelector('#chat');
            new MutationObserver(() => {
                const bots = chat.querySelectorAll("[data-testid='bot']");
                const last = bots[bots.length - 1];
                window.__states.push({
                    bots: bots.length,
                    text: last ? last.innerText.trim() : '',
                    cards: chat.querySelectorAll('.source-card').length,
                });
            }).observe(chat, {subtree: true, childList: true, characterData: true});
        }"""
    )
    ask(page, "Was muss ein CAIO mitbringen?")
    # A partial answer: text present, still ending in the streaming ellipsis, no cards yet.
    page.wait_for_function(
        """() => {
            const bots = document.querySelectorAll("#chat [data-testid='bot']");
            const last = bots[bots.length - 1];
            return last && last.innerText.trim().endsWith('…')
                && !document.querySelector('#chat .source-card');
        }""",
        timeout=ANSWER_TIMEOUT,
    )
    screenshot(page, "01-streaming")
    wait_for_cards(page, 3)
    screenshot(page, "01-final-answer")

    states = page.evaluate("window.__states")
    partial = [s for s in states if s["bots"] == 1 and s["text"].endswith("…") and not s["cards"]]
    assert len({s["text"] for s in partial}) >= 2, "the answer was not streamed"
    lengths = [len(s["text"]) for s in partial]
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1], "streamed text did not grow"
    first_final = next(i for i, s in enumerate(states) if s["cards"])
    assert first_final > states.index(partial[-1]), "cards appeared before the stream ended"
    final_text = page.locator(BOT).last.inner_text()
    assert len(final_text) > lengths[-1] and not final_text.rstrip().endswith("…")

    bot = page.locator(BOT).last
    assert bot.locator(".source-card").count() >= 3
    markers = bot.locator("a.cite")
    assert markers.count() >= 3
    assert re.fullmatch(r"\[\d+\]", markers.first.inner_text().strip())
    # [n] points at source card n of this answer (not at a file in a new tab).
    first_card = markers.first.get_attribute("href")
    assert re.fullmatch(r"#a[0-9a-f]{8}-source-1", first_card)
    assert markers.first.get_attribute("target") is None
    assert bot.locator(first_card).count() == 1
    opener = bot.locator(first_card).locator("a.open-document")
    assert "/view/rollen/rollenprofil-caio.docx?" in opener.get_attribute("href")

    card = bot.locator(".source-card").first
    passage = card.locator(".passage")
    assert not passage.is_visible()  # collapsed until opened
    card.locator("summary").click()
    passage.wait_for(state="visible")
    assert card.get_attribute("open") is not None
    mark = passage.locator("mark").first
    mark.wait_for(state="visible")
    assert mark.inner_text().strip()
    card.scroll_into_view_if_needed()
    screenshot(page, "01-source-card-open")
    assert requested and all(r.startswith(url) or r.startswith("data:") for r in requested), [
        r for r in requested if not r.startswith(url)
    ]


# --- 2. opening a source -------------------------------------------------------------------------


def test_pdf_source_link_serves_the_document(browser_server, page, screenshot):
    url, _ = browser_server
    open_chat(page, url + "/")
    ask(page, "Wie lange werden Chatverläufe in NordGPT gespeichert?")
    wait_for_cards(page)
    link = page.locator(
        "#chat .source-card .source-meta "
        "a[href*='/files/richtlinien/datenschutz-ki-tools.pdf?'][href*='#page=']"
    ).first
    link.wait_for(state="attached")
    href = link.get_attribute("href")
    assert href.startswith(url + "/files/")
    assert int(href.rsplit("#page=", 1)[1]) >= 1
    assert "sig=" in href  # signed: a restricted document would open for this reader too
    assert link.get_attribute("target") == "_blank"
    link.locator("xpath=ancestor::details").locator("summary").click()
    link.scroll_into_view_if_needed()
    screenshot(page, "02-pdf-source-card")

    response = page.request.get(href)
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/pdf")
    assert response.body()[:5] == b"%PDF-"

    # Nothing outside the corpus folder, however the path is spelled.
    for path in (
        "/files/..%2Fpyproject.toml",
        "/files/%2e%2e%2fpyproject.toml",
        "/files/richtlinien/..%2F..%2Fpyproject.toml",
        "/files/%2Fetc%2Fpasswd",
        "/files/does-not-exist.pdf",
    ):
        response = page.request.get(url + path)
        assert response.status == 404, path
        assert b"[project]" not in response.body() and b"root:" not in response.body()
    # Browsers and Playwright normalise "/../"; send it verbatim as a raw request too.
    host = urlsplit(url)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
    try:
        conn.request("GET", "/files/../pyproject.toml")
        raw = conn.getresponse()
        assert raw.status == 404
        assert b"[project]" not in raw.read()
    finally:
        conn.close()


# --- 3. feedback ----------------------------------------------------------------------------------


def test_thumbs_down_with_comment_is_stored(browser_server, page, screenshot):
    url, data_dir = browser_server
    open_chat(page, url + "/")
    # An error reply first (question too long): it has no turn of its own, so the rating below
    # must still be attributed to the right answer.
    ask(page, "Frage " * 400)
    page.locator(BOT).first.wait_for(state="visible", timeout=ANSWER_TIMEOUT)
    assert "zu lang" in page.locator(BOT).first.inner_text()  # translated for the German UI

    question = "Wie reiche ich eine KI-Idee ein?"
    ask(page, question)
    page.locator(BOT).nth(1).locator(".source-card").first.wait_for(timeout=ANSWER_TIMEOUT)
    comment_row = page.locator("#comment-row")
    assert not comment_row.is_visible()

    page.locator(BOT).nth(1).locator(
        "xpath=ancestor::*[contains(@class,'message-row')]/following-sibling::*[1]"
    ).get_by_role("button", name=DISLIKE).click()
    comment_row.wait_for(state="visible", timeout=15_000)
    comment = "Die Antwort nennt die Frist für Pilotprojekte nicht."
    page.locator("#comment textarea").fill(comment)
    screenshot(page, "03-feedback-comment")
    page.locator("#comment-send").click()
    comment_row.wait_for(state="hidden", timeout=15_000)
    wait_for_toast(page, "Danke für Ihr Feedback!")
    screenshot(page, "03-feedback-sent")

    with sqlite3.connect(data_dir / "app.sqlite") as db:
        db.row_factory = sqlite3.Row
        rows = [dict(r) for r in db.execute("SELECT * FROM feedback")]
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["rating"] == -1
    assert row["question"] == question
    assert row["comment"] == comment
    assert row["answered"] == 1 and row["answer"]
    citations = json.loads(row["citations"])
    assert citations and citations[0]["source"]
    # the rater's groups (an anonymous reader: everyone's at most), never a user id
    assert row["groups"] in ("", "all") and "user_id" not in row


# --- 4. clear, language switch, browser language -------------------------------------------------


def test_new_chat_and_language(browser_server, page, new_context, screenshot):
    url, _ = browser_server
    open_chat(page, url + "/")
    ask(page, "Welche KI-Tools sind bei uns freigegeben?")
    wait_for_cards(page)
    page.locator("#new-chat").click()
    page.locator(f"{BOT}, {USER}").first.wait_for(state="detached", timeout=15_000)
    assert page.locator(f"{BOT}, {USER}").count() == 0
    assert page.locator(CARD).count() == 0
    screenshot(page, "04-cleared")

    box = page.locator(QUESTION)
    assert box.get_attribute("placeholder").startswith("Ihre Frage")
    assert page.locator("#language input[value='Deutsch']").is_checked()
    page.locator("#language").get_by_text("English", exact=True).click()
    page.wait_for_function(
        "() => document.querySelector('#question textarea').placeholder.startsWith('Your question')",
        timeout=15_000,
    )
    page.locator("#send").filter(has_text=re.compile(r"^\s*Send\s*$")).wait_for()
    assert page.locator("#new-chat").inner_text().strip() == "New chat"
    assert "AI Roles Assistant" in page.locator("#header").inner_text()
    screenshot(page, "04-english")

    english = new_context(locale="en-US").new_page()
    open_chat(english, url + "/")
    english.locator("#language input[value='English']").wait_for(state="attached")
    english.wait_for_function(
        "() => document.querySelector(\"#language input[value='English']\").checked",
        timeout=15_000,
    )
    english.wait_for_function(
        "() => document.querySelector('#question textarea').placeholder.startsWith('Your question')",
        timeout=15_000,
    )
    assert english.locator("#send").inner_text().strip() == "Send"
    screenshot(english, "04-browser-english")


# --- 5. safety -----------------------------------------------------------------------------------


def test_markup_in_question_is_shown_as_text(browser_server, page, screenshot):
    url, _ = browser_server
    open_chat(page, url + "/")
    attack = (
        '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> Was ist ein CAIO?'
    )
    ask(page, attack)
    wait_for_cards(page)
    user = page.locator(USER).first
    user.wait_for(state="visible")
    shown = user.inner_text()
    assert "<img" in shown and "<script>" in shown
    assert page.locator(USER).get_by_text("<img", exact=False).first.is_visible()
    assert page.locator("#chat img[src='x']").count() == 0
    assert page.locator("#chat script").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"
    user.scroll_into_view_if_needed()
    screenshot(page, "05-markup-as-text")


# --- 6. widget on an intranet page ----------------------------------------------------------------


def test_widget_snippet_on_intranet_page(browser_server, intranet, page, screenshot):
    url, _ = browser_server
    snippet_page = httpx.get(url + "/embed/snippet", timeout=30)
    assert snippet_page.status_code == 200
    found = re.search(r'<pre id="snippet-script"><code>(.*?)</code></pre>', snippet_page.text, re.S)
    assert found, "no script snippet on /embed/snippet"
    snippet = html.unescape(found.group(1)).strip()
    assert snippet == f'<script src="{url}/widget.js" defer></script>'
    intranet.pages["/"] = (
        '<!doctype html><html lang="de"><head><meta charset="utf-8"><title>Nordwerk Intranet</title>'
        "</head><body><h1>Nordwerk Intranet</h1><p>Willkommen im Intranet.</p>"
        f"{snippet}</body></html>"
    )

    page.goto(intranet.origin + "/", wait_until="domcontentloaded")
    button = page.locator("#ki-assistent-button")
    button.wait_for(state="visible", timeout=30_000)
    assert page.locator("#ki-assistent-frame").count() == 0  # loaded only when opened
    button.click()
    assert button.get_attribute("aria-expanded") == "true"
    iframe = page.locator("#ki-assistent-panel #ki-assistent-frame")
    iframe.wait_for(state="visible")
    assert iframe.get_attribute("src") == url + "/embed/"

    frame = page.frame_locator("#ki-assistent-frame")
    frame.locator(QUESTION).wait_for(state="visible", timeout=60_000)
    ask(frame, "Was muss ein CAIO mitbringen?")
    wait_for_cards(frame)
    assert frame.locator(BOT).last.locator("a.cite").count() >= 1
    screenshot(page, "06-intranet-widget")


# --- 7. framing from an origin that is not allowed ----------------------------------------------


def test_framing_refused_for_other_origins(
    browser_server, intranet, foreign_site, page, new_context, screenshot
):
    url, _ = browser_server
    framing = (
        '<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head><body>'
        f'<h1>{{title}}</h1><iframe id="f" src="{url}/embed/" style="width:420px;height:520px">'
        "</iframe></body></html>"
    )
    foreign_site.pages["/"] = framing.format(title="Fremde Seite")
    intranet.pages["/frame.html"] = framing.format(title="Intranet")

    # The allowed origin may frame the widget (the control for the refusal below) ...
    allowed = new_context().new_page()
    allowed.goto(intranet.origin + "/frame.html", wait_until="domcontentloaded")
    allowed.frame_locator("#f").locator(QUESTION).wait_for(state="visible", timeout=60_000)
    screenshot(allowed, "07-allowed-frame")

    # ... any other origin is refused by the browser (CSP frame-ancestors).
    with page.expect_console_message(
        lambda msg: "frame-ancestors" in msg.text, timeout=30_000
    ) as refusal:
        page.goto(foreign_site.origin + "/", wait_until="domcontentloaded")
    assert url in refusal.value.text
    page.locator("#f").wait_for(state="attached")
    child = page.locator("#f").element_handle().content_frame()
    assert child is not None and not child.url.startswith(url)
    assert page.frame_locator("#f").locator("#question").count() == 0
    assert page.frame_locator("#f").locator("#chat").count() == 0
    screenshot(page, "07-refused-frame")
