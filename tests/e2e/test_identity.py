"""Who asks decides what can be quoted: tokens, the SSO proxy, audiences, the audit log, limits.

`server` (no trusted proxy, JWT secret set) answers anonymous and token-carrying requests; a second
app process on the same store (`proxy_app`) trusts 127.0.0.1 as SSO proxy and allows only a few
questions per minute.
"""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from e2e.conftest import make_token, running_app

HR_DOC = "personal/hr-intern-verguetung-ki-rollen.md"
SALARY = "Was verdient ein Chief AI Officer bei uns? Wie hoch ist das Gehaltsband?"


def ask(url: str, question: str = SALARY, **kwargs) -> httpx.Response:
    return httpx.post(url + "/api/ask", json={"question": question}, timeout=60, **kwargs)


def sources(body: dict) -> set[str]:
    return {c["source"] for c in body["citations"]}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def proxy_app(server_store, server):
    proxy = {
        "ASSISTANT_TRUSTED_PROXIES": "127.0.0.1",
        "ASSISTANT_JWT_SECRET": "",
        "ASSISTANT_RATE_LIMIT_PER_MINUTE": "4",
    }
    with running_app(*server_store, proxy) as url:
        yield url


def test_hr_only_document_is_never_quoted_to_others(server):
    anonymous = ask(server).json()
    assert HR_DOC not in sources(anonymous)
    assert "165.000" not in anonymous["answer"]
    other_team = ask(server, headers=bearer(make_token(groups=["logistik"]))).json()
    assert HR_DOC not in sources(other_team)


def test_hr_member_gets_the_hr_document(server):
    body = ask(server, headers=bearer(make_token(groups=["hr"]))).json()
    assert HR_DOC in sources(body)
    assert "165.000" in body["answer"] or any("165.000" in c["text"] for c in body["citations"])


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        (make_token(ttl_s=-120), "expired"),
        (make_token(secret="not-the-intranet-secret-at-all-0123456789"), "signature"),
        ("not.a.jwt", "invalid"),
    ],
    ids=["expired", "forged", "garbage"],
)
def test_bad_tokens_are_refused_clearly(server, token, fragment):
    response = ask(server, headers=bearer(token))
    assert response.status_code == 401
    assert fragment in response.json()["detail"]


def test_restricted_file_is_served_only_to_its_audience(server):
    assert httpx.get(f"{server}/files/{HR_DOC}").status_code == 404
    other = httpx.get(f"{server}/files/{HR_DOC}", headers=bearer(make_token(groups=["it"])))
    assert other.status_code == 404
    hr = httpx.get(f"{server}/files/{HR_DOC}", headers=bearer(make_token(groups=["hr"])))
    assert hr.status_code == 200 and "Gehaltsbänder" in hr.text
    forged = httpx.get(
        f"{server}/files/{HR_DOC}?exp=9999999999&sig=00000000000000000000000000000000"
    )
    assert forged.status_code == 404


def test_proxy_headers_count_only_from_a_trusted_proxy(server, proxy_app):
    headers = {"X-Forwarded-User": "p.kuehn", "X-Forwarded-Groups": "hr,management"}
    # `server` trusts no proxy: the headers are ignored.
    assert HR_DOC not in sources(ask(server, headers=headers).json())
    # `proxy_app` trusts 127.0.0.1: the same headers identify an HR member.
    assert HR_DOC in sources(ask(proxy_app, headers=headers).json())


def test_answers_are_audited_with_the_user_id_only(server, server_store):
    token = make_token(sub="audit-user-7", groups=["hr"])
    ask(server, headers=bearer(token))
    _, data_dir = server_store
    db = sqlite3.connect(data_dir / "app.sqlite")
    rows = db.execute("select user_id, via, groups, channel, question from audit_log").fetchall()
    assert ("audit-user-7", "token", "all,hr", "api", SALARY) in rows
    assert any(r[0] == "anonymous" for r in rows)
    db.close()
    raw = b"".join(p.read_bytes() for p in data_dir.glob("app.sqlite*") if p.is_file())
    assert token.encode() not in raw, "tokens are never stored"


@pytest.mark.parametrize(
    "path",
    [
        "/gradio_api/info",
        "/embed/gradio_api/info",
        "/GRADIO_API/INFO",
        "/gradio_api/openapi.json",
        "/openapi.json",
        "/docs",
        "/gradio_api/monitoring",
        "/monitoring",
    ],
)
def test_api_description_and_monitoring_closed_to_anonymous(server, path):
    assert httpx.get(server + path).status_code == 401


def test_api_description_open_when_signed_in(server):
    info = httpx.get(server + "/gradio_api/info", headers=bearer(make_token()))
    assert info.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/gradio_api/file=/etc/passwd",
        "/gradio_api/file=../../pyproject.toml",
        "/gradio_api/file=%2e%2e/%2e%2e/pyproject.toml",
        "/GRADIO_API/FILE=/etc/passwd",
        "/gradio_api/File=/etc/passwd",
        "/embed/gradio_api/file=/etc/passwd",
        "/file=/etc/passwd",
        "/gradio_api/file=corpus/" + HR_DOC,
    ],
)
def test_gradio_file_routes_serve_nothing_outside(server, server_store, path):
    response = httpx.get(server + path)
    assert response.status_code != 200 or "root:" not in response.text
    assert response.status_code in (400, 403, 404, 405)
    corpus, _ = server_store
    absolute = httpx.get(f"{server}/gradio_api/file={corpus / HR_DOC}")
    assert absolute.status_code in (400, 403, 404)


def test_rate_limit_gives_a_clear_429(proxy_app):
    statuses = [ask(proxy_app, "Was ist ein CAIO?").status_code for _ in range(6)]
    assert statuses[:4] == [200] * 4
    limited = ask(proxy_app, "Was ist ein CAIO?")
    assert limited.status_code == 429
    assert "per minute" in limited.json()["detail"]
    assert int(limited.headers["retry-after"]) >= 1
