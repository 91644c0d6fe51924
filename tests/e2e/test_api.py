"""The JSON API over real HTTP on 127.0.0.1."""

from __future__ import annotations

import httpx


def test_healthz_reports_loaded_index(server):
    health = httpx.get(server + "/healthz").json()
    assert health["status"] == "ok" and health["chunks"] > 50


def test_ask_returns_cited_answer(server):
    response = httpx.post(
        server + "/api/ask", json={"question": "Was muss ein CAIO mitbringen?"}, timeout=60
    )
    assert response.status_code == 200
    body = response.json()
    assert body["answered"] and body["citations"][0]["source"] == "rollen/rollenprofil-caio.docx"
    assert "[1]" in body["answer"]


def test_unanswerable_question(server):
    body = httpx.post(
        server + "/api/ask", json={"question": "Wie viele Urlaubstage habe ich?"}, timeout=60
    ).json()
    assert body["answered"] is False and body["citations"] == []


def test_empty_question_is_a_clear_4xx(server):
    response = httpx.post(server + "/api/ask", json={"question": "  "}, timeout=60)
    assert response.status_code == 422
    assert response.json()["detail"] == "question is empty"


def test_chat_page_and_openapi_served(server):
    assert httpx.get(server + "/").status_code == 200
    assert "/api/ask" in httpx.get(server + "/openapi.json").json()["paths"]
