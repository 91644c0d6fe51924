"""The chat, the widget and the admin pages as people use them, in Chromium (desktop and a
390x844 phone): citations that stay in the chat, a readable document view, tables, refusals that
say whom to ask, conversations back after a reload, a widget that fits, an admin list that reads.
Screenshots land in artifacts/screenshots/ (ux-*.png)."""

from __future__ import annotations

import re

import httpx
import pytest
from conftest import write_docx, write_html

from e2e.conftest import JWT_SECRET, make_token, running_app
from e2e.test_browser import BOT, CARD, QUESTION, ask, open_chat, wait_for_cards

CONTACT = "die Stabsstelle KI (ki@nordwerk.example)"
PARKING = """---
title: Parkplätze an den Standorten
owner: Facility Management – Jan Olsen
audience: all
---
# Parkplätze an den Standorten

## Übersicht

Die Parkplätze werden je Standort vergeben:

| Standort | Parkplätze | Ansprechpartner |
|---|---|---|
| Bremen | 120 | Empfang Bremen |
| Hamburg | 80 | Empfang Hamburg |
| Leipzig | 45 | Empfang Leipzig |
"""
TRAVEL = """---
title: Reisekosten für KI-Konferenzen
owner: Finanzen – Jana Roth
effective_date: 2025-03-01
audience: all
---
# Reisekosten für KI-Konferenzen

## Erstattung

Erstattet werden Bahnfahrten in der 2. Klasse und Konferenzgebühren bis 800 Euro.
"""


@pytest.fixture(scope="module")
def ux_app(tmp_path_factory, intranet):
    """The app on a small corpus with a Markdown table, a DOCX and an HTML document."""
    tmp = tmp_path_factory.mktemp("ux")
    corpus = tmp / "corpus"
    corpus.mkdir()
    (corpus / "parken.md").write_text(PARKING, encoding="utf-8")
    (corpus / "reisekosten.md").write_text(TRAVEL, encoding="utf-8")
    write_docx(corpus / "datenkurator.docx")
    write_html(corpus / "coffee.html")
    env = {
        "ASSISTANT_EMBED_ORIGINS": intranet.origin,
        "ASSISTANT_JWT_SECRET": JWT_SECRET,
        "ASSISTANT_RATE_LIMIT_PER_MINUTE": "1000",
        "ASSISTANT_CONTACT": CONTACT,
    }
    with running_app(corpus, tmp / "data", env) as url:
        yield url


def last_answer(page) -> str:
    wait_for_cards(page)
    return page.locator(BOT).last.inner_text()


# --- citations stay in the chat; documents open as a readable view ------------------------------


def test_a_marker_opens_its_card_in_the_chat(ux_app, new_context, screenshot):
    context = new_context()
    page = context.new_page()
    open_chat(page, ux_app + "/")
    ask(page, "Wer pflegt die Trainingsdatensätze der Lagerlogistik?")
    wait_for_cards(page)
    bot = page.locator(BOT).last
    marker = bot.locator("a.cite").first
    card = bot.locator(marker.get_attribute("href"))
    assert card.get_attribute("open") is None
    marker.click()
    card.locator(".passage").wait_for(state="visible")
    assert card.get_attribute("open") is not None
    assert len(context.pages) == 1 and page.url.rstrip("/") == ux_app  # still the chat
    screenshot(page, "ux-01-marker-opens-card")


@pytest.mark.parametrize(
    ("question", "source", "quoted"),
    [
        ("Bis zu welchem Betrag werden Konferenzgebühren erstattet?", "reisekosten.md",
         "Konferenzgebühren bis 800 Euro"),
        ("Wer pflegt die Trainingsdatensätze der Lagerlogistik?", "datenkurator.docx",
         "pflegt die Trainingsdatensätze"),
        ("How often is the espresso machine descaled?", "coffee.html",
         "descaling of the espresso machine"),
    ],
    ids=["markdown", "docx", "html"],
)  # fmt: skip
def test_the_document_view_marks_the_cited_passage(
    ux_app, new_context, screenshot, question, source, quoted
):
    context = new_context()
    page = context.new_page()
    open_chat(page, ux_app + "/")
    ask(page, question)
    wait_for_cards(page)
    link = page.locator(BOT).last.locator(f"a.open-document[href*='/view/{source}']").first
    href = link.get_attribute("href")
    assert "#cited" in href and "sig=" in href
    view = context.new_page()
    view.goto(href, wait_until="domcontentloaded")
    cited = view.locator("mark#cited")
    cited.wait_for(state="visible")
    marked = " ".join(view.locator("mark").all_inner_texts())
    assert quoted in marked
    assert "owner:" not in view.locator("main").inner_text()  # front matter is not text
    assert view.locator("script").count() == 0
    top = view.evaluate("() => document.getElementById('cited').getBoundingClientRect().top")
    assert 0 <= top < 900  # scrolled into view
    screenshot(view, f"ux-02-view-{source.rsplit('.', 1)[1]}")


def test_a_table_answer_is_a_table(ux_app, page, screenshot):
    open_chat(page, ux_app + "/")
    ask(page, "Wie viele Parkplätze hat der Standort Bremen?")
    wait_for_cards(page)
    bot = page.locator(BOT).last
    table = bot.locator("table").first
    table.wait_for(state="visible")
    rows = [r.inner_text() for r in table.locator("tr").all()]
    assert any("Standort" in r and "Parkplätze" in r for r in rows)  # the header row
    assert any("Bremen" in r and "120" in r for r in rows)  # the row, whole
    bot.locator(".source-card").first.locator("summary").click()
    assert bot.locator(".passage-table td").filter(has_text=re.compile("^Leipzig$")).count() == 1
    screenshot(page, "ux-03-table")


def test_a_refusal_says_whom_to_ask_and_quotes_nothing(ux_app, page, screenshot):
    answer = httpx.post(
        ux_app + "/api/ask", json={"question": "Wie setze ich mein VPN-Passwort zurück?"}
    ).json()
    assert not answer["answered"] and CONTACT in answer["notice"]
    open_chat(page, ux_app + "/")
    ask(page, "Wie setze ich mein VPN-Passwort zurück?")
    page.get_by_text("Ansprechpartner").first.wait_for(timeout=60_000)
    shown = page.locator(BOT).last.inner_text()
    assert "Zitate aus den Dokumenten" not in shown and "Quellen" not in shown
    screenshot(page, "ux-04-refusal")


# --- the page on a phone, and one control to start over ---------------------------------------


def test_on_a_phone_the_answer_uses_the_width(ux_app, browser, screenshot):
    context = browser.new_context(locale="de-DE", viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        open_chat(page, ux_app + "/")
        ask(page, "Wie viele Parkplätze hat der Standort Hamburg?")
        wait_for_cards(page)
        width = page.locator(BOT).last.bounding_box()["width"]
        assert width >= 0.8 * 390, width
        # Single-word cells ("Standort", "Parkplätze") stay on one line.
        broken = page.evaluate(
            """() => [...document.querySelectorAll('#chat .message td, #chat .message th')]
                .filter((cell) => cell.innerText.trim() && !/\\s/.test(cell.innerText.trim()))
                .filter((cell) => {
                    const range = document.createRange();
                    range.selectNodeContents(cell);
                    return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size > 1;
                })
                .map((cell) => cell.innerText)"""
        )
        assert broken == [], broken
        assert (
            page.locator("#chat button[aria-label]").filter(has_text=re.compile("Copy")).count()
            == 0
        )
        screenshot(page, "ux-05-phone")
    finally:
        context.close()


# --- conversations come back --------------------------------------------------------------------


def test_a_signed_in_users_conversation_comes_back(ux_app, new_context, screenshot):
    token = make_token("eva.marx", ("it",))
    page = new_context().new_page()
    open_chat(page, f"{ux_app}/?token={token}")
    ask(page, "Wie viele Parkplätze hat der Standort Leipzig?")
    wait_for_cards(page)
    page.locator("#history").wait_for(state="visible", timeout=30_000)

    # Another browser (another device): the same user sees it again after the page loads.
    other = new_context().new_page()
    open_chat(other, f"{ux_app}/?token={token}")
    other.locator(BOT).first.wait_for(timeout=30_000)
    assert "45" in other.locator(BOT).last.inner_text()
    assert other.locator(CARD).count() >= 1
    screenshot(other, "ux-06-conversation-back")

    # Someone else does not.
    stranger = new_context().new_page()
    open_chat(stranger, f"{ux_app}/?token={make_token('jonas.brandt', ('it',))}")
    stranger.wait_for_timeout(2_000)
    assert stranger.locator(BOT).count() == 0

    # Deleted: gone on the next load too.
    other.locator("#delete-conversation").click()
    other.locator(BOT).first.wait_for(state="detached", timeout=30_000)
    again = new_context().new_page()
    open_chat(again, f"{ux_app}/?token={token}")
    again.wait_for_timeout(2_000)
    assert again.locator(BOT).count() == 0


def test_an_anonymous_conversation_stays_in_that_browser(ux_app, new_context):
    context = new_context()
    page = context.new_page()
    open_chat(page, ux_app + "/")
    ask(page, "Wie viele Parkplätze hat der Standort Bremen?")
    wait_for_cards(page)
    page.wait_for_timeout(1_000)  # the browser stores it after the answer
    page.reload(wait_until="domcontentloaded")
    page.locator(BOT).first.wait_for(timeout=30_000)
    assert "120" in page.locator(BOT).last.inner_text()
    elsewhere = new_context().new_page()
    open_chat(elsewhere, ux_app + "/")
    elsewhere.wait_for_timeout(2_000)
    assert elsewhere.locator(BOT).count() == 0
    page.locator("#new-chat").click()
    page.locator(BOT).first.wait_for(state="detached")


# --- the widget ---------------------------------------------------------------------------------


def widget_page(app_url: str) -> str:
    return (
        '<!doctype html><html lang="de"><head><meta charset="utf-8"><title>Intranet</title>'
        "</head><body><h1>Nordwerk Intranet</h1>"
        f'<script src="{app_url}/widget.js" defer></script></body></html>'
    )


def test_the_widget_fits_380x600_with_the_switch_visible(ux_app, intranet, page, screenshot):
    intranet.pages["/ux.html"] = widget_page(ux_app)
    page.goto(f"{intranet.origin}/ux.html", wait_until="domcontentloaded")
    page.locator("#ki-assistent-button").click()
    panel = page.locator("#ki-assistent-panel").bounding_box()
    assert panel["width"] <= 380 and panel["height"] <= 600
    frame = page.frame_locator("#ki-assistent-frame")
    frame.locator(QUESTION).wait_for(state="visible", timeout=60_000)
    inside = page.locator("#ki-assistent-frame").element_handle().content_frame()
    sizes = inside.evaluate(
        """() => { const box = (s) => document.querySelector(s).getBoundingClientRect();
        return {height: window.innerHeight, width: window.innerWidth,
                scroll: document.scrollingElement.scrollHeight,
                language: box('#language').bottom, send: box('#send').bottom,
                sendRight: box('#send').right, question: box('#question').width}; }"""
    )
    assert sizes["scroll"] <= sizes["height"] + 2, sizes  # no scrolling chrome
    assert sizes["language"] <= sizes["height"] and sizes["send"] <= sizes["height"], sizes
    assert sizes["sendRight"] <= sizes["width"] and sizes["question"] >= 150, sizes
    screenshot(page, "ux-07-widget")


def test_the_widget_on_a_page_it_may_not_serve_says_so(ux_app, foreign_site, page, screenshot):
    foreign_site.pages["/ux.html"] = widget_page(ux_app)
    messages = []
    page.on("console", lambda message: messages.append(message.text))
    page.goto(f"{foreign_site.origin}/ux.html", wait_until="domcontentloaded")
    page.locator("#ki-assistent-button").click()
    line = page.locator("#ki-assistent-blocked")
    line.wait_for(state="visible", timeout=30_000)
    assert line.inner_text() == "Dieser Assistent ist für diese Seite nicht freigegeben."
    assert page.locator("#ki-assistent-frame").count() == 0
    assert any("ASSISTANT_EMBED_ORIGINS" in m for m in messages), messages
    screenshot(page, "ux-08-widget-blocked")


def test_the_snippet_page_shows_both_snippets(ux_app):
    page = httpx.get(ux_app + "/embed/snippet").text
    assert 'id="snippet-script"' in page and 'id="snippet-signed"' in page
    assert "data-token" in page and "ASSISTANT_JWT_SECRET" in page


# --- the admin list reads ----------------------------------------------------------------------


def test_admin_table_headers_do_not_break_words(ux_app, page, screenshot):
    page.goto(
        f"{ux_app}/admin/login?token={make_token('hr-admin', ('admin',))}",
        wait_until="domcontentloaded",
    )
    table = page.locator("#documents-table")
    table.get_by_text("Parkplätze an den Standorten").first.wait_for(timeout=60_000)
    # A header broken inside a word takes more than one line: count its text's line boxes.
    lines = page.evaluate(
        """() => Array.from(document.querySelectorAll('#documents-table th')).map(th => {
            const walker = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);
            let most = 0, text = '';
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                if (!node.textContent.trim()) { continue; }
                const range = document.createRange();
                range.selectNodeContents(node);
                const tops = new Set(Array.from(range.getClientRects())
                    .filter(r => r.width > 0).map(r => Math.round(r.top)));
                most = Math.max(most, tops.size);
                text += node.textContent.trim();
            }
            return [text, most]; })"""
    )
    broken = [(text, n) for text, n in lines if text and n > 1]
    assert lines and not broken, broken
    shown = table.inner_text()
    assert "Ordner" in shown and "corpus" not in shown
    assert "upload:" not in shown and "Abschnitte" in shown
    screenshot(page, "ux-09-admin-documents", full_page=True)
