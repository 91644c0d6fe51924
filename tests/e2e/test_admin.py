"""Document admin over real HTTP: upload -> answerable -> delete -> gone, admins only, versions."""

from __future__ import annotations

import httpx
import pytest

from e2e.conftest import make_token

ADMIN = {"authorization": f"Bearer {make_token('hr-admin', ('admin', 'hr'))}"}
EMPLOYEE = {"authorization": f"Bearer {make_token('emp-7', ('it',))}"}

DRONES = (
    "# Drohnenlieferung an Standorte\n\n## Regel\n\nDrohnenlieferungen an Lagerstandorte sind "
    "nur werktags zwischen 8 und 16 Uhr erlaubt. Die Freigabe erteilt die Standortleitung.\n"
)
QUESTION = "Wann sind Drohnenlieferungen an Lagerstandorte erlaubt?"


def upload(server, files, headers=ADMIN, **form):
    return httpx.post(
        server + "/api/admin/documents", files=files, data=form, headers=headers, timeout=120
    )


def ask(server, question=QUESTION, headers=None):
    response = httpx.post(
        server + "/api/ask", json={"question": question}, headers=headers or {}, timeout=60
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def uploaded(server):
    """Sources uploaded by a test; deleted afterwards whatever happened (the server is shared)."""
    sources: list[str] = []
    yield sources
    for source in sources:
        httpx.delete(f"{server}/api/admin/documents/{source}", headers=ADMIN, timeout=60)


@pytest.mark.parametrize(
    ("headers", "status", "fragment"),
    [
        ({}, 401, "sign in"),
        (EMPLOYEE, 403, "only for the group 'admin'"),
        ({"authorization": "Bearer forged.token.value"}, 401, "token"),
    ],
)
def test_admin_api_and_page_refuse_non_admins(server, headers, status, fragment):
    for method, path in [
        ("GET", "/api/admin/documents"),
        ("POST", "/api/admin/reindex"),
        ("DELETE", "/api/admin/documents/upload:x.md"),
        ("GET", "/admin/config"),
        ("POST", "/admin/gradio_api/upload"),
    ]:
        response = httpx.request(method, server + path, headers=headers, timeout=30)
        assert response.status_code == status, (path, response.text)
        assert fragment in response.json()["detail"]


def test_a_browser_without_admin_rights_gets_the_login_page_or_a_clear_refusal(server):
    page = httpx.get(server + "/admin/", headers={"accept": "text/html"}, timeout=30)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/admin/login")
    login = httpx.get(server + page.headers["location"], timeout=30)
    assert login.status_code == 200 and 'id="login"' in login.text

    employee = httpx.get(
        server + "/admin/login", params={"token": make_token("emp-7", ("it",))}, timeout=30
    )
    assert employee.status_code == 403
    assert "nicht in der Gruppe" in employee.text and "kra_admin" not in employee.headers.get(
        "set-cookie", ""
    )
    wrong = httpx.post(
        server + "/admin/login", data={"username": "hr", "password": "guess"}, timeout=30
    )
    assert wrong.status_code == 401 and "Passwort falsch" in wrong.text


def test_an_admin_token_signs_in_with_a_cookie_that_opens_the_page(server):
    with httpx.Client(base_url=server, timeout=30) as client:
        login = client.get(
            "/admin/login",
            params={"token": make_token("hr-admin", ("admin",)), "next": "//evil.example/x"},
        )
        assert login.status_code == 303
        assert login.headers["location"] == "/admin/"  # no open redirect
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert client.get("/admin/", headers={"accept": "text/html"}).status_code == 200
        assert client.get("/api/admin/documents").status_code == 200
    tampered = httpx.get(
        server + "/api/admin/documents",
        cookies={"kra_admin": client.cookies["kra_admin"][:-2] + "00"},
        timeout=30,
    )
    assert tampered.status_code == 401


def test_upload_answerable_then_delete_gone(server, uploaded):
    assert not any(c["source"].startswith("upload:") for c in ask(server)["citations"])

    response = upload(
        server,
        [("files", ("Drohnen Richtlinie.md", DRONES.encode(), "text/markdown"))],
        title="Drohnen-Richtlinie",
        owner="Logistik – Kim Weber",
        audience="all",
        effective_date="2025-01-01",
        version="1",
    )
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert result["status"] == "indexed", result
    uploaded.append(result["source"])

    answer = ask(server)
    assert answer["answered"]
    assert answer["citations"][0]["source"] == result["source"]
    assert answer["citations"][0]["title"] == "Drohnen-Richtlinie"
    assert "8 und 16 Uhr" in answer["answer"]
    listed = httpx.get(server + "/api/admin/documents", headers=ADMIN, timeout=30).json()
    row = next(d for d in listed if d["source"] == result["source"])
    assert (row["original_name"], row["owner"], row["chunks"]) == (
        "Drohnen Richtlinie.md",
        "Logistik – Kim Weber",
        1,
    )
    assert {d["kind"] for d in listed} == {"corpus", "upload"}
    # The document link in the answer serves the uploaded file.
    file = httpx.get(f"{server}/files/{result['source']}", timeout=30)
    assert file.status_code == 200 and "8 und 16 Uhr" in file.text

    deleted = httpx.delete(f"{server}/api/admin/documents/{result['source']}", headers=ADMIN)
    assert deleted.status_code == 200 and deleted.json()["chunks_removed"] == 1
    uploaded.remove(result["source"])
    assert result["source"] not in {c["source"] for c in ask(server)["citations"]}
    assert httpx.get(f"{server}/files/{result['source']}", timeout=30).status_code == 404


def test_many_files_get_one_result_each_and_bad_ones_name_their_problem(server, uploaded):
    response = upload(
        server,
        [
            ("files", ("tool.exe", b"MZ\x90\x00", "application/octet-stream")),
            ("files", ("leer.md", b"", "text/markdown")),
            ("files", ("drohnen.md", DRONES.encode(), "text/markdown")),
        ],
    )
    results = response.json()["results"]
    uploaded.extend(r["source"] for r in results if r["status"] == "indexed")
    assert [r["status"] for r in results] == ["failed", "failed", "indexed"]
    assert "unsupported file type '.exe'" in results[0]["error"]
    assert "empty" in results[1]["error"]

    bad_date = upload(
        server, [("files", ("d.md", DRONES.encode(), "text/markdown"))], effective_date="1.1.25"
    )
    assert "effective_date must be a date like 2025-01-31" in bad_date.json()["results"][0]["error"]
    corpus_delete = httpx.delete(
        f"{server}/api/admin/documents/artikel/chief-ai-officer-rolle.md", headers=ADMIN
    )
    assert corpus_delete.status_code == 409 and "corpus folder" in corpus_delete.json()["detail"]


def test_a_superseded_or_expired_policy_is_not_cited_as_current(server, uploaded):
    def put(text, **form):
        [result] = upload(
            server, [("files", ("drohnen.md", text.encode(), "text/markdown"))], **form
        ).json()["results"]
        assert result["status"] == "indexed", result
        uploaded.append(result["source"])
        return result["source"]

    old = put(DRONES, title="Drohnen-Richtlinie", effective_date="2024-01-01", version="1")
    new = put(
        DRONES.replace("8 und 16", "7 und 19"),
        title="Drohnen-Richtlinie",
        effective_date="2025-01-01",
        version="2",
    )
    answer = ask(server)
    cited = [c["source"] for c in answer["citations"]]
    assert new in cited and old not in cited
    assert "7 und 19 Uhr" in answer["answer"] and "8 und 16" not in answer["answer"]
    listed = {
        d["source"]: d["status"]
        for d in httpx.get(server + "/api/admin/documents", headers=ADMIN, timeout=30).json()
    }
    assert (listed[old], listed[new]) == ("superseded", "current")

    expired = put(
        "# Parkplatzregel\n\n## Laden\n\nE-Autos dürfen an den Ladesäulen höchstens vier Stunden "
        "stehen.\n",
        expiry_date="2025-06-30",
    )
    answer = ask(server, "Wie lange darf ein E-Auto an der Ladesäule stehen?")
    citation = answer["citations"][0]
    assert citation["source"] == expired
    assert (citation["status"], citation["status_since"]) == ("expired", "2025-06-30")
    assert "nicht mehr gültig" in answer["notice"] and "30.06.2025" in answer["notice"]


def test_an_upload_for_hr_is_answered_for_hr_only(server, uploaded):
    [result] = upload(
        server, [("files", ("d.md", DRONES.encode(), "text/markdown"))], audience="hr"
    ).json()["results"]
    uploaded.append(result["source"])
    hr = {"authorization": f"Bearer {make_token('hr-1', ('hr',))}"}
    assert ask(server, headers=hr)["citations"][0]["source"] == result["source"]
    assert result["source"] not in {c["source"] for c in ask(server)["citations"]}
    assert httpx.get(f"{server}/files/{result['source']}", timeout=30).status_code == 404


def test_reindex_one_and_unknown(server, uploaded):
    [result] = upload(server, [("files", ("d.md", DRONES.encode(), "text/markdown"))]).json()[
        "results"
    ]
    uploaded.append(result["source"])
    again = httpx.post(
        server + "/api/admin/reindex", params={"source": result["source"]}, headers=ADMIN
    )
    assert again.status_code == 200 and again.json()["results"][0]["status"] == "indexed"
    unknown = httpx.post(
        server + "/api/admin/reindex", params={"source": "upload:nope.md"}, headers=ADMIN
    )
    assert unknown.status_code == 404 and "no uploaded document" in unknown.json()["detail"]
