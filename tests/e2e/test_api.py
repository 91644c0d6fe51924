"""The JSON API and the Gradio endpoint over real HTTP on 127.0.0.1."""

from __future__ import annotations

import httpx
import pytest

from e2e.conftest import ALLOWED_ORIGIN, make_token


def ask(server, payload, **kwargs):
    return httpx.post(server + "/api/ask", json=payload, timeout=60, **kwargs)


def test_healthz_reports_loaded_index(server):
    health = httpx.get(server + "/healthz").json()
    assert health["status"] == "ok" and health["chunks"] > 50 and health["corpus_version"]


def test_ask_returns_cited_answer(server):
    response = ask(server, {"question": "Was muss ein CAIO mitbringen?"})
    assert response.status_code == 200
    body = response.json()
    assert body["answered"] and body["citations"][0]["source"] == "rollen/rollenprofil-caio.docx"
    assert "[1]" in body["answer"] and body["mode"] == "extractive"
    assert {"n", "source", "title", "section", "page", "text", "score"} <= set(body["citations"][0])


def test_unanswerable_question(server):
    body = ask(server, {"question": "Wie viele Urlaubstage habe ich?"}).json()
    assert body["answered"] is False and body["citations"] == []
    assert "Wissensbasis" in body["answer"]


def test_follow_up_uses_history(server):
    history = [
        {"role": "user", "content": "Was macht ein AI Product Owner?"},
        {"role": "assistant", "content": "…"},
    ]
    alone = ask(server, {"question": "Und welche Tools nutzen sie?"}).json()
    follow = ask(server, {"question": "Und welche Tools nutzen sie?", "history": history}).json()
    assert "AI PO" in follow["query"] or "Product Owner" in follow["query"]
    assert follow["answered"]
    assert any("product-owner" in c["source"] for c in follow["citations"])
    assert alone["query"] == ""  # nothing to complete from


def test_follow_up_with_its_own_subject_does_not_inherit(server):
    history = [{"role": "user", "content": "Was muss ein CAIO mitbringen?"}]
    body = ask(
        server, {"question": "Und was macht ein AI Product Owner?", "history": history}
    ).json()
    assert body["query"] == ""
    assert "product-owner" in body["citations"][0]["source"]


@pytest.mark.parametrize(
    ("payload", "status", "fragment"),
    [
        ({"question": ""}, 422, "question is empty"),
        ({"question": "   \t "}, 422, "question is empty"),
        ({"question": "\x00\x01\x02"}, 422, "question is empty"),
        ({"question": "Was ist ein CAIO? " * 200}, 422, "question is too long"),
        ({"question": 42}, 422, "string"),
        ({}, 422, "question"),
        ({"question": "Und?", "history": [{"role": "user", "content": 123}]}, 422, "content"),
        ({"question": "Und?", "history": [{"role": "user"}]}, 422, "history.0.content"),
        ({"question": "Und?", "history": [{"role": "system", "content": "x"}]}, 422, "role"),
        ({"question": "Und?", "history": ["Was ist ein CAIO?"]}, 422, "history.0"),
    ],
)
def test_bad_questions_get_a_clear_4xx(server, payload, status, fragment):
    response = ask(server, payload)
    assert response.status_code == status
    assert fragment in str(response.json()["detail"])


def test_binary_body_is_refused(server):
    response = httpx.post(
        server + "/api/ask",
        content=b"\x89PNG\r\n\x1a\n\x00\xff\xfe",
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code in (400, 422)
    assert response.json()["detail"]


def test_oversized_body_is_refused(server):
    response = httpx.post(
        server + "/api/ask",
        content=b'{"question": "' + b"x" * 200_000 + b'"}',
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413
    assert "too large" in response.text.lower()


def test_cors_allows_listed_origin_only(server):
    allowed = ask(server, {"question": "Was ist ein CAIO?"}, headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN
    foreign = ask(server, {"question": "Was ist ein CAIO?"}, headers={"Origin": "http://evil.test"})
    assert "access-control-allow-origin" not in foreign.headers
    preflight = httpx.options(
        server + "/api/ask",
        headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    # Gradio's own routes do not reflect a foreign origin either.
    config = httpx.get(server + "/config", headers={"Origin": "http://evil.test"})
    assert config.headers.get("access-control-allow-origin") in (None, ALLOWED_ORIGIN)


@pytest.mark.parametrize("path", ["/", "/embed/", "/embed/snippet", "/healthz"])
def test_csp_frame_ancestors(server, path):
    response = httpx.get(server + path, follow_redirects=True)
    assert response.status_code == 200
    assert f"frame-ancestors 'self' {ALLOWED_ORIGIN}" in response.headers["content-security-policy"]


def test_snippet_has_the_servers_url(server):
    page = httpx.get(server + "/embed/snippet").text
    assert f"{server}/widget.js" in page and ALLOWED_ORIGIN in page
    script = httpx.get(server + "/widget.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]


@pytest.mark.parametrize(
    "path",
    [
        "/files/../pyproject.toml",
        "/files/%2e%2e/pyproject.toml",
        "/files//etc/passwd",
        "/files/RICHTLINIEN/KI-RICHTLINIE.MD",
        "/files/richtlinien/datenschutz-ki-tools.pdf.meta.yaml",
    ],
)
def test_only_corpus_documents_are_served(server, path):
    assert httpx.get(server + path).status_code == 404


def test_corpus_document_served_read_only(server):
    pdf = httpx.get(server + "/files/richtlinien/datenschutz-ki-tools.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    html_doc = httpx.get(server + "/files/rollen/rollenprofil-ai-product-owner.html")
    assert "sandbox" in html_doc.headers["content-security-policy"]
    assert httpx.post(server + "/files/richtlinien/ki-richtlinie.md").status_code in (404, 405)


def test_chat_page_and_openapi_served(server):
    assert httpx.get(server + "/").status_code == 200
    signed_in = {"Authorization": f"Bearer {make_token()}"}
    assert "/api/ask" in httpx.get(server + "/openapi.json", headers=signed_in).json()["paths"]
    assert httpx.get(server + "/docs", headers=signed_in).status_code == 200


def test_gradio_client_chat_endpoint(server):
    from gradio_client import Client

    # The API description is for signed-in callers only (see test_identity.py).
    client = Client(
        server + "/", verbose=False, headers={"Authorization": f"Bearer {make_token()}"}
    )
    result = client.predict("What must a CAIO bring?", api_name="/chat")
    assert result["answered"] and result["citations"]
    assert result["citations"][0]["source"] == "rollen/rollenprofil-caio.docx"
