"""The app under load and faults, as real processes: a full in-flight gate, a read-only data dir,
and corpus files whose names are stored in another Unicode form than they have on disk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fake_llm import FakeLLM, Reply
from test_ingest_faults import unprivileged

from e2e.conftest import running_app
from e2e.test_browser import ANSWER_TIMEOUT, BOT, DISLIKE, ask, open_chat, wait_for_toast

QUESTION = "Was muss ein CAIO mitbringen?"


def post_question(url: str, question: str = QUESTION) -> httpx.Response:
    return httpx.post(url + "/api/ask", json={"question": question}, timeout=120)


# --- a full gate: 503 "busy" with Retry-After -----------------------------------------------------


@pytest.fixture(scope="module")
def held_llm():
    """A model that answers only once the test lets it: (server, release event)."""
    release = threading.Event()

    def held(messages: list[dict]) -> Reply:
        release.wait(300)
        return Reply.ok("Ein CAIO bringt Erfahrung mit KI-Strategie mit. [1]")

    with FakeLLM(held) as llm:
        yield llm, release
        release.set()


@pytest.fixture(scope="module")
def busy_app(server_store, server, held_llm):
    """One question at a time, none waiting; answers need the held model."""
    llm, _ = held_llm
    limits = {
        "ASSISTANT_LLM_PROVIDER": "openai",
        "ASSISTANT_LLM_BASE_URL": llm.openai_url,
        "ASSISTANT_LLM_MODEL": "fake",
        "ASSISTANT_LLM_TIMEOUT_S": "300",  # the held answer must not fall back meanwhile
        "ASSISTANT_MAX_CONCURRENT_ASKS": "1",
        "ASSISTANT_MAX_WAITING_ASKS": "0",
        "ASSISTANT_RATE_LIMIT_PER_MINUTE": "1000",
    }
    with running_app(*server_store, limits) as url:
        yield url


def test_full_gate_answers_503_busy_with_retry_after(busy_app, held_llm):
    llm, release = held_llm
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(post_question, busy_app)
        # The first question holds the only slot once it is waiting for the model.
        deadline = time.monotonic() + 120
        while not llm.requests:
            assert not first.done(), first.result().text
            assert time.monotonic() < deadline, "the app never asked the model"
            time.sleep(0.05)
        refused = [f.result() for f in [pool.submit(post_question, busy_app) for _ in range(3)]]
        release.set()
        answered = first.result()

    assert answered.status_code == 200, answered.text
    assert answered.json()["answered"]
    for response in refused:
        assert response.status_code == 503
        assert response.json()["detail"] == "the assistant is busy; please try again in a moment"
        assert int(response.headers["retry-after"]) >= 1
    # The slot is free again.
    assert post_question(busy_app).status_code == 200


# --- a read-only data dir --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def read_only_app(server_store, server, tmp_path_factory):
    """An app on a read-only copy of the API tests' store, run without root's power to ignore
    file modes: (base URL, data dir, server log)."""
    corpus, data_dir = server_store
    data = tmp_path_factory.mktemp("read-only") / "data"
    shutil.copytree(data_dir, data)
    subprocess.run(["chmod", "-R", "a-w", str(data)], check=True)
    try:
        with running_app(
            corpus,
            data,
            {"ASSISTANT_RATE_LIMIT_PER_MINUTE": "1000"},
            preexec_fn=unprivileged(),
        ) as url:
            yield url, data, next(data.parent.glob("server-*.log"))
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(data)], check=True)


def test_read_only_store_answers_and_health_says_why_it_is_stale(read_only_app):
    url, data, log = read_only_app
    reason = f"store is read-only: {data}; make it writable for this user to ingest"
    health = httpx.get(url + "/healthz", timeout=10)
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert health.json()["ingest_error"] == reason
    assert (
        f"ERROR assistant.web.runtime: startup ingest stopped, answering from the stored corpus: {reason}"
        in log.read_text()
    )
    answer = post_question(url)
    assert answer.status_code == 200 and answer.json()["answered"]


def test_feedback_on_a_read_only_store_is_a_clear_503(read_only_app):
    url, _, log = read_only_app
    answer = post_question(url).json()
    rated = httpx.post(url + "/api/feedback", json={**answer, "rating": -1}, timeout=30)
    assert rated.status_code == 503
    detail = rated.json()["detail"]
    assert detail.startswith("the feedback store cannot be written: ")
    assert "readonly" in detail
    assert f"ERROR assistant.web.api: {detail}" in log.read_text()
    assert post_question(url).status_code == 200  # the chat keeps answering


def test_thumbs_on_a_read_only_store_say_so_and_the_chat_goes_on(read_only_app, page, screenshot):
    url, _, _ = read_only_app
    open_chat(page, url + "/")
    ask(page, QUESTION)
    page.locator(BOT).first.locator(".source-card").first.wait_for(timeout=ANSWER_TIMEOUT)
    page.locator(BOT).first.locator(
        "xpath=ancestor::*[contains(@class,'message-row')]/following-sibling::*[1]"
    ).get_by_role("button", name=DISLIKE).click()
    wait_for_toast(page, "Ihre Bewertung konnte nicht gespeichert werden")
    assert not page.locator("#comment-row").is_visible()
    screenshot(page, "hardening-feedback-read-only")
    ask(page, "Welche KI-Tools sind bei uns freigegeben?")
    page.locator(BOT).nth(1).locator(".source-card").first.wait_for(timeout=ANSWER_TIMEOUT)


# --- file names on disk in another Unicode form ----------------------------------------------------

NFC_TOP = "Übersicht Dienstreisen.md"
NFC_NESTED = "Geschäftsbereiche/Flüge und Hotels.md"


def nfd(name: str) -> str:
    return unicodedata.normalize("NFD", name)


def write_doc(path: Path, title: str, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"---\ntitle: {title}\nowner: Finanzen\neffective_date: 2025-03-01\naudience: all\n"
        f"language: de\n---\n# {title}\n\n{body}\n",
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def nfd_app(tmp_path_factory):
    """A corpus whose file names are decomposed on disk (as macOS writes them), the folder of one
    composed: the app stores and cites them composed (NFC)."""
    tmp = tmp_path_factory.mktemp("nfd")
    corpus = tmp / "corpus"
    write_doc(
        corpus / nfd(NFC_TOP),
        "Übersicht Dienstreisen",
        "Dienstreisen mit der Bahn werden in der zweiten Klasse erstattet.",
    )
    write_doc(
        corpus / "Geschäftsbereiche" / nfd("Flüge und Hotels.md"),
        "Flüge und Hotels",
        "Flüge werden erst ab einer Entfernung von 800 Kilometern erstattet. "
        "Hotels bis 120 Euro pro Nacht.",
    )
    assert sorted(os.listdir(corpus)) == sorted(["Geschäftsbereiche", nfd(NFC_TOP)])
    with running_app(corpus, tmp / "data") as url:
        yield url


def test_files_with_decomposed_names_are_served(nfd_app):
    for source, text in ((NFC_TOP, "zweiten Klasse"), (NFC_NESTED, "800 Kilometern")):
        for form in (source, nfd(source)):  # the stored (NFC) name, and the name as on disk
            response = httpx.get(f"{nfd_app}/files/{quote(form)}", timeout=30)
            assert response.status_code == 200, (form, response.text)
            assert text in response.text
    assert httpx.get(f"{nfd_app}/files/{quote('Ubersicht Dienstreisen.md')}").status_code == 404

    answer = post_question(nfd_app, "Ab welcher Entfernung werden Flüge erstattet?").json()
    assert NFC_NESTED in {c["source"] for c in answer["citations"]}
