"""The admin page in Chromium: sign in, upload -> answered in the chat -> delete -> gone; refused
to non-admins."""

from __future__ import annotations

from e2e.conftest import make_token
from e2e.test_browser import BOT, CARD, ask, open_chat, wait_for_cards

DRONES = (
    "# Drohnenlieferung an Standorte\n\n## Regel\n\nDrohnenlieferungen an Lagerstandorte sind "
    "nur werktags zwischen 8 und 16 Uhr erlaubt. Die Freigabe erteilt die Standortleitung.\n"
)
QUESTION = "Wann sind Drohnenlieferungen an Lagerstandorte erlaubt?"


def sign_in(page, base: str, groups=("admin",)) -> None:
    page.goto(
        f"{base}/admin/login?token={make_token('hr-admin', groups)}", wait_until="domcontentloaded"
    )


def test_upload_is_answered_in_the_chat_then_deleted(
    browser_server, new_context, tmp_path, screenshot
):
    base, data_dir = browser_server
    context = new_context()
    admin = context.new_page()
    sign_in(admin, base)
    admin.locator("#documents-table").wait_for(state="visible", timeout=60_000)
    # The corpus is listed with its metadata.
    admin.locator("#documents-table").get_by_text("Rollenprofil", exact=False).first.wait_for()

    policy = tmp_path / "Drohnen Richtlinie 2025.md"
    policy.write_text(DRONES, encoding="utf-8")
    broken = tmp_path / "Scan.pdf"
    broken.write_bytes(b"%PDF-1.4 not really")
    admin.locator("#upload-files input[type=file]").set_input_files([str(policy), str(broken)])
    admin.locator("#upload-title textarea").fill("Drohnen-Richtlinie")
    admin.locator("#upload-owner textarea").fill("Logistik – Kim Weber")
    admin.locator("#upload").click()
    results = admin.locator("#upload-results")
    results.get_by_text("indexiert", exact=True).first.wait_for(timeout=120_000)
    shown = results.inner_text()
    assert "Drohnen Richtlinie 2025.md" in shown
    assert "fehlgeschlagen" in shown and "PDF" in shown  # the broken file, with its reason
    table = admin.locator("#documents-table")
    table.get_by_text("Logistik – Kim Weber").first.wait_for()
    screenshot(admin, "admin-upload", full_page=True)
    # Stored under a generated name; the original name is metadata only.
    stored = [p.name for p in (data_dir / "uploads").iterdir()]
    assert len(stored) == 1 and "Drohnen" not in stored[0]

    # Answered in the running server's chat, without a restart.
    chat = context.new_page()
    open_chat(chat, base + "/")
    ask(chat, QUESTION)
    wait_for_cards(chat)
    assert "8 und 16 Uhr" in chat.locator(BOT).last.inner_text()
    assert "Drohnen-Richtlinie" in chat.locator(CARD).first.inner_text()

    # Delete it on the admin page.
    admin.locator("#delete-pick input").click()
    admin.get_by_role("option", name="Drohnen-Richtlinie", exact=False).first.click()
    admin.locator("#delete").click()
    table.get_by_text("Logistik – Kim Weber").first.wait_for(state="detached", timeout=60_000)
    assert list((data_dir / "uploads").iterdir()) == []

    chat.locator("#new-chat").click()
    ask(chat, QUESTION)
    chat.locator(BOT).last.wait_for()
    chat.wait_for_function(
        "() => { const b = document.querySelectorAll(\"#chat [data-testid='bot']\");"
        " return b.length && /Wissensbasis|Quellen/.test(b[b.length-1].innerText); }",
        timeout=60_000,
    )
    assert "8 und 16 Uhr" not in chat.locator(BOT).last.inner_text()


def test_the_admin_page_is_refused_to_employees(browser_server, page, screenshot):
    base, _ = browser_server
    sign_in(page, base, groups=("it",))
    assert "Kein Zugriff" in page.locator("#denied").inner_text()
    page.goto(base + "/admin/", wait_until="domcontentloaded")
    # No session: the login page, and nothing of the admin app.
    page.locator("#login").wait_for()
    assert page.locator("#documents-table").count() == 0
    screenshot(page, "admin-refused")
