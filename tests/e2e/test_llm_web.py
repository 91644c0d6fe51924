"""LLM mode through the real server: the app process talks to a scripted OpenAI-compatible server.

A second app process shares the browser tests' store (copy of the shipped corpus) and is started
with ASSISTANT_LLM_PROVIDER=openai pointing at `FakeLLM` on 127.0.0.1.
"""

from __future__ import annotations

import subprocess

import httpx
import pytest
from fake_llm import HTTP500, FakeLLM, Reply
from test_generation import SUPPORTED, _passage_number

from e2e.conftest import start_server
from e2e.test_browser import BOT, CARD, ask, open_chat

QUESTION = "Was muss ein CAIO mitbringen?"


def _slow_cited(messages: list[dict]) -> Reply:
    n = _passage_number(messages, "Entscheidungsvorlagen")
    # A model that writes a few words every 0.15 s: the browser sees the answer grow.
    return Reply(SUPPORTED.format(n=n), chunk_delay_s=0.15)


@pytest.fixture(scope="module")
def llm():
    with FakeLLM(_slow_cited) as server:
        yield server


@pytest.fixture(scope="module")
def llm_app(browser_server, llm):
    _, data_dir = browser_server
    proc, url = start_server(
        data_dir.parent / "corpus",
        data_dir,
        extra_env={
            "ASSISTANT_LLM_PROVIDER": "openai",
            "ASSISTANT_LLM_BASE_URL": llm.openai_url,
            "ASSISTANT_LLM_MODEL": "fake",
            "ASSISTANT_LLM_TIMEOUT_S": "5",
        },
    )
    yield url
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(autouse=True)
def default_script(llm):
    llm.script(_slow_cited)


def test_api_reports_llm_mode_and_fallback(llm_app, llm):
    body = httpx.post(llm_app + "/api/ask", json={"question": QUESTION}, timeout=30).json()
    assert body["mode"] == "llm" and body["answered"]
    assert "Entscheidungsvorlagen" in body["answer"]
    assert [c["n"] for c in body["citations"]] == [1]

    llm.script(HTTP500)
    body = httpx.post(llm_app + "/api/ask", json={"question": QUESTION}, timeout=30).json()
    assert body["mode"] == "fallback" and body["answered"] and body["citations"]
    assert body["notice"]


def test_browser_streams_llm_text_then_shows_verified_answer(llm_app, page, screenshot):
    open_chat(page, llm_app + "/")
    ask(page, QUESTION)
    # While the model writes: its text grows, ending in the ellipsis, no source cards yet.
    page.wait_for_function(
        """() => {
            const bots = document.querySelectorAll("#chat [data-testid='bot']");
            const last = bots[bots.length - 1];
            return last && last.innerText.includes('Entscheidungsvorlagen')
                && last.innerText.trim().endsWith('…')
                && !document.querySelector('#chat .source-card');
        }""",
        timeout=60_000,
    )
    page.locator(CARD).first.wait_for(state="visible", timeout=60_000)
    last = page.locator(BOT).last
    assert last.locator(".answer-mode.mode-llm").count() == 1
    assert "…" not in last.inner_text().split("\n")[0]
    screenshot(page, "10-llm-answer")
