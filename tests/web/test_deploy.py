"""Behind a reverse proxy that serves the app under a path prefix (and strips it): the ASGI root path
(the path of ASSISTANT_PUBLIC_URL, which app.py hands to uvicorn) puts every mounted chat page's
URLs under the prefix."""

from __future__ import annotations

from conftest import make_settings
from fastapi.testclient import TestClient

from assistant.web.server import create_app

PROXY = {"x-forwarded-host": "intranet.example.com", "x-forwarded-proto": "https"}


def roots(settings) -> dict[str, str]:
    """The public root each Gradio app tells the browser, asked as the proxy forwards it."""
    # As app.py runs it: uvicorn sets the ASGI root_path and puts it before the path the proxy
    # forwarded (the TestClient does the latter only when told). No lifespan: no store is opened.
    client = TestClient(create_app(settings), root_path=settings.root_path)
    prefix = settings.root_path
    return {
        path: client.get(f"{prefix}{path}config", headers=PROXY).json()["root"]
        for path in ("/", "/embed/")
    }


def test_chat_pages_under_the_prefix_of_the_public_url(tmp_path):
    settings = make_settings(
        tmp_path, tmp_path, public_url="https://intranet.example.com/ki-assistent/"
    )
    assert settings.root_path == "/ki-assistent"
    assert roots(settings) == {
        "/": "https://intranet.example.com/ki-assistent",
        "/embed/": "https://intranet.example.com/ki-assistent/embed",
    }


def test_at_the_root_the_proxy_headers_decide(tmp_path):
    settings = make_settings(tmp_path, tmp_path, public_url="https://ki.example.com")
    assert settings.root_path == ""
    assert roots(settings) == {
        "/": "https://intranet.example.com",
        "/embed/": "https://intranet.example.com/embed",
    }


def test_the_admin_gate_holds_under_the_prefix(tmp_path):
    """The gate sees the routed path (without the prefix): the admin app stays closed to
    anonymous callers, and its redirects stay under the prefix."""
    settings = make_settings(
        tmp_path, tmp_path, public_url="https://intranet.example.com/ki-assistent/"
    )
    client = TestClient(create_app(settings), root_path=settings.root_path)
    prefix = settings.root_path
    for path in (
        "/admin/config",
        "/api/admin/documents",
        "/admin/gradio_api/upload",
        "/admin/login/",
    ):
        response = client.get(f"{prefix}{path}", headers=PROXY)
        assert response.status_code == 401, path
    # The login form's own route only: its path with a slash is the admin Gradio app's /login/.
    assert client.post(f"{prefix}/admin/login/", headers=PROXY).status_code == 401
    page = client.get(
        f"{prefix}/admin/", headers={**PROXY, "accept": "text/html"}, follow_redirects=False
    )
    assert page.status_code == 303
    assert page.headers["location"] == "/ki-assistent/admin/login?next=/admin/"
    login = client.get(f"{prefix}/admin/login", headers=PROXY)
    assert 'action="/ki-assistent/admin/login"' in login.text
    assert client.get(f"{prefix}/gradio_api/info", headers=PROXY).status_code == 401
