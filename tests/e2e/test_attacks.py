"""Attacks on the running app over real HTTP (security review, round 2): each test reproduces
one finding against `app.py` as deployed and checks that it is refused.

The app trusts one SSO proxy, 127.0.0.2: the tests reach it from other loopback addresses as
other machines would (127.0.0.1 for an attacker on the app host, 127.0.0.x for more clients).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import httpx
import pytest

from assistant.records.audit import AuditLog
from assistant.records.feedback import FeedbackStore
from e2e.conftest import ALLOWED_ORIGIN, JWT_SECRET, make_token, running_app, start_server

PROXY = "127.0.0.2"
RATE = 4  # questions per minute and address (or user)
HR_TOKEN = make_token("hr-7", ("hr",))
ADMIN_TOKEN = make_token("hr-admin", ("admin", "hr"))

HOMEOFFICE_V1 = """---
title: Homeoffice-Regel
owner: Personal
document_id: homeoffice
version: "1"
effective_date: 2024-01-01
audience: all
---
# Homeoffice-Regel

## Umfang

Homeoffice ist an zwei Tagen pro Woche erlaubt, nach Absprache mit der Teamleitung.
"""
# The new version is only for HR so far: for everybody else it must not exist at all.
HOMEOFFICE_V2 = """---
title: Homeoffice-Regel Vorstandsentwurf Zeitarbeit
owner: Personal
document_id: homeoffice
version: "2"
effective_date: 2025-01-01
audience: hr
---
# Homeoffice-Regel Vorstandsentwurf Zeitarbeit

## Umfang

Homeoffice ist an drei Tagen pro Woche erlaubt, nach Absprache mit der Teamleitung.
"""
SALARIES = """---
title: Gehaltsbänder KI-Rollen
owner: Personal
audience: hr
---
# Gehaltsbänder KI-Rollen

## Bänder

Der Chief AI Officer ist in Band Q1 eingruppiert, der AI Product Owner in Band P3.
"""


def client(address: str = "127.0.0.1", **kwargs) -> httpx.Client:
    """An HTTP client whose connections come from `address` (a loopback address of its own)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=120, **kwargs)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app on a small corpus: (base URL, data dir)."""
    tmp = tmp_path_factory.mktemp("attacks")
    corpus = tmp / "corpus"
    corpus.mkdir()
    (corpus / "homeoffice-v1.md").write_text(HOMEOFFICE_V1, encoding="utf-8")
    (corpus / "homeoffice-v2.md").write_text(HOMEOFFICE_V2, encoding="utf-8")
    (corpus / "gehalt.md").write_text(SALARIES, encoding="utf-8")
    env = {
        "ASSISTANT_TRUSTED_PROXIES": PROXY,
        "ASSISTANT_RATE_LIMIT_PER_MINUTE": str(RATE),
        "ASSISTANT_JWT_SECRET": JWT_SECRET,
        "ASSISTANT_EMBED_ORIGINS": ALLOWED_ORIGIN,
        "ASSISTANT_MAX_FILE_MB": "0.5",
    }
    with running_app(corpus, tmp / "data", env) as url:
        yield url, tmp / "data"


def ask(http: httpx.Client, url: str, question: str, **kwargs) -> httpx.Response:
    return http.post(f"{url}/api/ask", json={"question": question}, **kwargs)


# --- 1. identity and addresses come from the socket peer, never from a header --------------------

SSO_ADMIN = {"x-forwarded-user": "eve", "x-forwarded-groups": "admin,hr"}


def test_forwarded_headers_from_an_untrusted_peer_name_nobody(app):
    url, _ = app
    spoof = {"x-forwarded-for": PROXY, **SSO_ADMIN}
    with client("127.0.0.1") as http:
        assert http.get(f"{url}/api/admin/documents", headers=spoof).status_code == 401
        assert http.get(f"{url}/files/gehalt.md", headers=spoof).status_code == 404
        answer = ask(http, url, "In welchem Band ist der Chief AI Officer?", headers=spoof).json()
        assert "gehalt.md" not in json.dumps(answer)


def test_the_trusted_proxy_names_the_user(app):
    url, _ = app
    with client(PROXY) as http:
        assert http.get(f"{url}/api/admin/documents", headers=SSO_ADMIN).status_code == 200
        served = http.get(f"{url}/files/gehalt.md", headers=SSO_ADMIN)
        assert served.status_code == 200 and "Band Q1" in served.text


def test_rotating_x_forwarded_for_does_not_reset_the_rate_limit(app):
    """From the app host itself (127.0.0.1, which uvicorn trusts for X-Forwarded-For by
    default): a new forwarded address per question is still one asker."""
    url, _ = app
    with client("127.0.0.1") as http:
        statuses = [
            ask(http, url, "Homeoffice?", headers={"x-forwarded-for": f"10.0.0.{i}"}).status_code
            for i in range(RATE + 2)
        ]
    assert statuses.count(200) <= RATE and statuses[-2:] == [429, 429]


def test_behind_the_proxy_each_client_has_its_own_limit(app):
    url, _ = app
    with client(PROXY) as http:
        for i in range(RATE + 1):  # one more than one client may ask, spread over two
            assert ask(http, url, "Homeoffice?", headers={"x-forwarded-for": f"10.1.0.{i % 2}"})
        over = [
            ask(http, url, "Homeoffice?", headers={"x-forwarded-for": "10.1.0.9"}).status_code
            for _ in range(RATE + 1)
        ]
    assert over[:RATE] == [200] * RATE and over[RATE] == 429


# --- 2. a version the reader may not see does not exist for them ---------------------------------


def test_a_restricted_successor_is_never_named(app):
    url, _ = app
    question = "An wie vielen Tagen pro Woche ist Homeoffice erlaubt?"
    with client("127.0.0.4") as http:
        public = ask(http, url, question).json()
        hr = ask(http, url, question, headers={"authorization": f"Bearer {HR_TOKEN}"}).json()
    text = json.dumps(public, ensure_ascii=False)
    assert public["answered"] and public["citations"][0]["source"] == "homeoffice-v1.md"
    assert "Vorstandsentwurf" not in text and "2025" not in text
    assert all(c["status"] == "current" and not c["replaced_by"] for c in public["citations"])
    assert "Achtung" not in public["notice"]
    # For HR the new version exists: it is what they are answered from.
    assert hr["citations"][0]["source"] == "homeoffice-v2.md"


# --- 3. body limits hold for chunked bodies ----------------------------------------------------


def chunked(total: int, piece: int = 64 * 1024):
    sent = 0
    while sent < total:
        yield b"a" * piece
        sent += piece


@pytest.mark.parametrize(
    "path", ["/api/ask", "/api/feedback", "/gradio_api/queue/join", "/embed/gradio_api/queue/join"]
)
def test_a_chunked_body_past_the_limit_is_refused_early(app, path):
    url, _ = app
    started = time.monotonic()
    with client("127.0.0.5") as http:
        response = http.post(
            url + path, content=chunked(20_000_000), headers={"content-type": "application/json"}
        )
    assert response.status_code == 413, response.text
    assert time.monotonic() - started < 10  # refused while the rest was still coming


# --- 4 is test_an_upload_killed_halfway_is_gone_after_restart, at the end of this file -------


# --- 5. Gradio's endpoints share the limit, the gate and the audit -------------------------------


def gradio_chat(http: httpx.Client, url: str, question: str) -> dict:
    event = http.post(f"{url}/gradio_api/call/chat", json={"data": [question]}).json()["event_id"]
    stream = http.get(f"{url}/gradio_api/call/chat/{event}").text
    data = [line[len("data: ") :] for line in stream.splitlines() if line.startswith("data: ")]
    return json.loads(data[-1])[0]


def test_gradio_chat_endpoint_is_rate_limited_and_audited(app):
    url, data_dir = app
    with client("127.0.0.6") as http:
        for _ in range(RATE):
            assert ask(http, url, "Homeoffice?").status_code == 200
        assert gradio_chat(http, url, "Homeoffice?")["status"] == 429
    with client("127.0.0.7") as http:
        answer = gradio_chat(http, url, "Wie viele Tage Homeoffice pro Woche?")
    assert answer["answered"] and answer["citations"]
    rows = AuditLog(f"sqlite:///{data_dir / 'app.sqlite'}", 90).rows()
    assert rows[-1]["question"] == "Wie viele Tage Homeoffice pro Woche?"


# --- 6. bad input is a 4xx with a short reason -----------------------------------------------------


def test_bad_input_gets_a_4xx_not_a_500(app):
    url, data_dir = app
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    log = next(data_dir.parent.glob("server-*.log"))
    before = log.read_text()
    with client("127.0.0.8") as http:
        long_path = http.get(f"{url}/files/{'a' * 5000}")
        far_dates = http.get(
            f"{url}/api/admin/analytics",
            params={"start": "9999-12-31", "end": "9999-12-31"},
            headers=admin,
        )
        huge_id = http.post(
            f"{url}/api/admin/feedback/99999999999999999999999/promote", headers=admin
        )
    assert long_path.status_code == 404
    assert far_dates.status_code == 422 and "9999-12-31" in far_dates.json()["detail"]
    assert huge_id.status_code == 422 and "feedback_id" in json.dumps(huge_id.json())
    logged = log.read_text()[len(before) :]
    assert "Traceback" not in logged and "a" * 200 not in logged


# --- 7. errors say what was wrong, not how the code is built ----------------------------------------


def test_malformed_gradio_calls_get_no_internals(app):
    url, _ = app
    with client("127.0.0.9") as http:
        bad_types = http.post(
            f"{url}/gradio_api/queue/join", json={"data": 5, "fn_index": "x", "session_hash": 7}
        )
        unknown = http.post(
            f"{url}/gradio_api/queue/join",
            json={"data": [], "fn_index": 999, "session_hash": "s1"},
        )
        queued = http.post(
            f"{url}/gradio_api/queue/join",
            json={"data": [{"x": 1}, "zz", None, 7], "fn_index": 1, "session_hash": "s2"},
        )
        stream = http.get(f"{url}/gradio_api/queue/data", params={"session_hash": "s2"}).text
    assert bad_types.status_code == 422 and unknown.status_code == 404
    assert queued.status_code == 200
    for text in (bad_types.text, unknown.text, stream):
        for internal in ("pydantic", "input_value", "Traceback", "object at 0x", "ValidationError"):
            assert internal not in text, (internal, text[:500])


# --- 8. admin changes only from the admin pages ---------------------------------------------------


def test_admin_changes_need_an_admin_page_as_referer(app):
    url, _ = app
    with client("127.0.0.10", follow_redirects=False) as http:
        login = http.get(f"{url}/admin/login", params={"token": ADMIN_TOKEN})
        assert login.status_code == 303 and "kra_admin" in http.cookies
        reindex = f"{url}/api/admin/reindex"
        intranet_page = {"referer": f"{url}/intranet/news.html", "origin": url}
        foreign = {"referer": f"{ALLOWED_ORIGIN}/admin/", "origin": ALLOWED_ORIGIN}
        assert http.post(reindex).status_code == 403  # a page that sends no Referer
        assert http.post(reindex, headers=intranet_page).status_code == 403
        assert http.post(reindex, headers=foreign).status_code == 403
        ours = http.post(reindex, headers={"referer": f"{url}/admin/", "origin": url})
        assert ours.status_code == 200, ours.text
    # A script with a bearer token is not a browser: no Referer needed.
    bearer = httpx.post(
        f"{url}/api/admin/reindex", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=120
    )
    assert bearer.status_code == 200


def test_forwarded_host_and_scheme_count_only_from_the_trusted_proxy(app):
    """They name the server in the embed snippet and the answers' links (and decide the admin
    cookie's Secure flag): from anyone else they are ignored."""
    url, _ = app
    forwarded = {"x-forwarded-host": "evil.example", "x-forwarded-proto": "https"}
    with client("127.0.0.15") as http:
        stranger = http.get(f"{url}/embed/snippet", headers=forwarded)
    with client(PROXY) as http:
        proxy = http.get(f"{url}/embed/snippet", headers=forwarded)
    assert stranger.status_code == proxy.status_code == 200
    assert "evil.example" not in stranger.text and url.split("//")[1] in stranger.text
    assert "https://evil.example/widget.js" in proxy.text


# --- 9. smaller holes ------------------------------------------------------------------------------


def test_feedback_is_size_and_rate_limited(app):
    url, _ = app
    with client("127.0.0.11") as http:
        rating = {**ask(http, url, "Wie viele Tage Homeoffice?").json(), "rating": 1}
        big = http.post(f"{url}/api/feedback", json={**rating, "comment": "x" * 40_000})
        statuses = [
            http.post(f"{url}/api/feedback", json=rating).status_code for _ in range(RATE + 1)
        ]
    assert big.status_code in (413, 422)
    assert statuses == [200] * RATE + [429]


JSON = {"content-type": "application/json"}
TEXT = {"content-type": "text/plain"}


def test_ratings_rate_answers_the_assistant_gave_once(app):
    """A rating needs the receipt /api/ask gave with the answer: nobody can rate answers never
    given (and move the rollout's thumbs-up share) or plant citations an admin would promote."""
    url, data = app
    feedback = f"{url}/api/feedback"
    with client("127.0.0.13") as http:
        answer = ask(http, url, "Wie viele Tage Homeoffice?").json()
        invented = {"question": "Homeoffice?", "answer": "Zwei Tage.", "citations": []}
        forged = http.post(feedback, json={**invented, "rating": 1, "receipt": answer["receipt"]})
        planted = [{**answer["citations"][0], "source": "gehalt.md", "quoted": 5}]
        edited = http.post(feedback, json={**answer, "citations": planted, "rating": 1})
        unsigned = http.post(feedback, json={**invented, "rating": 1})
        first = http.post(feedback, json={**answer, "rating": 1})
        hr = {"authorization": f"Bearer {HR_TOKEN}"}  # another asker with the same receipt
        someone_else = http.post(feedback, json={**answer, "rating": -1}, headers=hr)
        # JSON may carry an unpaired surrogate ("\\ud800"), which UTF-8 cannot store.
        odd = {**answer, "rating": -1, "comment": "bad \ud800 one"}
        odd_comment = http.post(feedback, content=json.dumps(odd), headers=JSON)
        again = http.post(feedback, json={**answer, "rating": -1, "comment": "doch nicht"})
    with client("127.0.0.14") as http:  # (the ratings' rate limit: four a minute here)
        odd["comment"], odd["citations"] = "", [{"text": "\udfff"}]
        odd_citation = http.post(feedback, content=json.dumps(odd), headers=JSON)
    for rejected in (forged, edited, odd_citation, someone_else):
        assert rejected.status_code == 400
        assert rejected.json()["detail"].startswith("receipt: not the receipt of this answer")
    assert unsigned.status_code == 422 and "receipt" in unsigned.text
    assert odd_comment.status_code == 422 and "comment" in odd_comment.text
    assert first.status_code == again.status_code == 200, again.text
    assert first.json()["id"] == again.json()["id"]
    rows = [r for r in FeedbackStore(f"sqlite:///{data / 'app.sqlite'}").all() if r["receipt"]]
    mine = [r for r in rows if r["id"] == first.json()["id"]]
    assert [(r["rating"], r["comment"]) for r in mine] == [(-1, "doch nicht")]
    log = next(data.parent.glob("server-*.log")).read_text()
    refusal = ": 400 receipt: not the receipt of this answer"
    assert log.count(f"POST /api/feedback from 127.0.0.13{refusal}") == 3
    assert log.count(f"POST /api/feedback from 127.0.0.14{refusal}") == 1


def test_every_refusal_leaves_one_log_line_that_forges_none(app):
    """401, 404, 413, 422, 429: one line each, naming the request and the reason; what the
    request carried (a CR, a terminal escape, NUL) is written as escapes, never raw."""
    url, data = app
    log_file = next(data.parent.glob("server-*.log"))
    before = log_file.read_text().count("\n")
    forged = "/files/x%0dERROR%20assistant.web.admin_auth:%20admin%20login%20ok%1b[2K%00"
    with client("127.0.0.16") as http:
        statuses = [
            http.get(url + forged).status_code,
            http.post(
                f"{url}/api/ask",
                json={"question": "x"},
                headers={"authorization": "Bearer garbage"},
            ).status_code,
            http.post(f"{url}/api/ask", json={"question": "x" * 300_000}).status_code,
            http.post(f"{url}/api/ask", json={"question": 5}).status_code,
        ]
        plain = http.post(f"{url}/api/ask", content='{"question": "x"}', headers=TEXT)
        broken = http.post(f"{url}/api/ask", content=b'{"question": "\xff"}', headers=JSON)
    lines = log_file.read_text().splitlines()[before:]
    mine = [line for line in lines if " from 127.0.0.16" in line]
    assert statuses == [404, 401, 413, 422]
    assert (plain.status_code, plain.json()["detail"]) == (
        415,
        "send the body as JSON (Content-Type: application/json), not 'text/plain'",
    )
    assert (broken.status_code, broken.json()["detail"]) == (
        400,
        "the body is not valid JSON (UTF-8 text)",
    )
    assert len(mine) == 6, lines
    assert mine[0].startswith("INFO assistant.web.errors: GET /files/x")
    assert "admin login ok\\x1b[2K\\x00 from 127.0.0.16: 404" in mine[0]
    assert not any(c in "".join(lines) for c in "\r\x1b\x00")


def test_the_chat_pages_take_no_files(app):
    """Gradio accepts uploads on every app; the chat pages have no file field."""
    url, _ = app
    with client("127.0.0.17") as http:
        for path in ("/gradio_api/upload", "/embed/gradio_api/upload"):
            stored = http.post(url + path, files={"files": ("x.html", b"<h1>hosted</h1>")})
            assert (stored.status_code, stored.json()) == (
                404,
                {"detail": "this page takes no files"},
            )


def gradio_event(url: str, kind: str, inputs: int, output: str = "") -> int:
    """The fn_index of the chat page's event on `kind` ("load", "like", "then") with that many
    inputs (and an output of that component type)."""
    config = httpx.get(f"{url}/config", timeout=30).json()
    types = {c["id"]: c.get("type") for c in config["components"]}
    return next(
        d["id"]
        for d in config["dependencies"]
        if any(target[1] == kind for target in d["targets"])
        and len(d["inputs"]) == inputs
        and (not output or output in [types.get(o) for o in d["outputs"]])
    )


def gradio_call(http: httpx.Client, url: str, fn: int, data: list, session: str, **event) -> dict:
    """One event through Gradio's queue, as the page sends it: the completed message."""
    body = {"data": data, "fn_index": fn, "session_hash": session, "event_data": None, **event}
    assert http.post(f"{url}/gradio_api/queue/join", json=body).status_code == 200
    with http.stream("GET", f"{url}/gradio_api/queue/data", params={"session_hash": session}) as s:
        for line in s.iter_lines():
            message = json.loads(line[5:]) if line.startswith("data:") else {}
            if message.get("msg") == "process_completed":
                return message
    raise AssertionError("the event did not complete")


def test_a_saved_chat_from_the_browser_is_only_text_and_rates_nothing(app, tmp_path):
    """An anonymous user's chat comes back from the browser (BrowserState) on page load: a
    message that is a file would have Gradio copy it into its cache and link it; a turn with an
    answer never given would be rated and counted."""
    url, data = app
    secret = tmp_path / "geheim-personalakte.txt"
    secret.write_text("streng vertraulich", encoding="utf-8")
    invented = {"question": "q", "answer": "nie gegeben", "citations": [], "answered": True}
    saved = {
        "messages": [
            {"role": "user", "content": "Hallo?"},
            {"role": "assistant", "content": {"path": str(secret)}},
            {"role": "assistant", "content": "Antwort"},
        ],
        "turns": [{"question": "q", "answer": {**invented, "mode": "extractive"}, "message": 2}],
    }
    ratings = FeedbackStore(f"sqlite:///{data / 'app.sqlite'}")
    before = len(ratings.all())
    load, like = gradio_event(url, "load", 2), gradio_event(url, "like", 3)
    with client("127.0.0.18") as http:
        opened = gradio_call(http, url, load, ["", saved], "s-18")
        liked = gradio_call(
            http,
            url,
            like,
            [None, None, None],
            "s-18",
            event_data={"index": 2, "value": "Antwort", "liked": True},
        )
    shown = json.dumps(opened["output"])
    assert opened["success"] and liked["success"], (opened, liked)
    assert "Antwort" in shown and secret.name not in shown and "file=" not in shown
    assert len(ratings.all()) == before
    # The turns go back to the browser after the next answer: nothing in them is a file either.
    as_file = {"path": str(secret), "meta": {"_type": "gradio.FileData"}}
    saved["turns"] = [{"question": "q", "answer": {"x": as_file, "citations": [as_file]}}]
    remember = gradio_event(url, "then", 4, output="browserstate")
    with client("127.0.0.18") as http:
        gradio_call(http, url, load, ["", saved], "s-19")
        kept = gradio_call(http, url, remember, [[], None, None, None], "s-19")
    assert kept["success"], kept
    assert secret.name not in json.dumps(kept["output"]) and "file=" not in json.dumps(kept)


def test_headers_past_the_limit_are_refused(app):
    url, _ = app
    with client("127.0.0.12") as http:
        response = http.get(f"{url}/healthz", headers={"x-padding": "x" * 100_000})
    assert response.status_code in (400, 431)


def test_uploads_are_served_sandboxed_and_too_large_ones_say_so(app):
    from fpdf import FPDF

    url, _ = app
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="Regel zur Nutzung von Scannern im Lager.")
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    with client("127.0.0.13") as http:
        files = [("files", ("scanner.pdf", bytes(pdf.output()), "application/pdf"))]
        [result] = http.post(f"{url}/api/admin/documents", files=files, headers=admin).json()[
            "results"
        ]
        assert result["status"] == "indexed", result
        served = http.get(f"{url}/files/{result['source']}", headers=admin)
        assert served.status_code == 200
        assert "sandbox" in served.headers["content-security-policy"]
        http.delete(f"{url}/api/admin/documents/{result['source']}", headers=admin)
        gone = http.delete(f"{url}/api/admin/documents/nirgends.md", headers=admin)
        in_corpus = http.delete(f"{url}/api/admin/documents/gehalt.md", headers=admin)
        too_big = [("files", ("gross.md", b"# Gross\n\n" + b"x" * 1_000_000, "text/markdown"))]
        [refused] = http.post(f"{url}/api/admin/documents", files=too_big, headers=admin).json()[
            "results"
        ]
    assert refused["status"] == "failed"
    assert refused["error"] == "the file is larger than the limit of 0.5 MB"
    assert (gone.status_code, gone.json()["detail"]) == (404, "no document 'nirgends.md'")
    assert in_corpus.status_code == 409 and "remove it there" in in_corpus.text


def test_an_allowed_origin_may_send_a_bearer_token(app):
    url, _ = app
    with client("127.0.0.14") as http:
        preflight = http.options(
            f"{url}/api/ask",
            headers={
                "origin": ALLOWED_ORIGIN,
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        answer = ask(
            http,
            url,
            "In welchem Band ist der Chief AI Officer?",
            headers={"origin": ALLOWED_ORIGIN, "authorization": f"Bearer {HR_TOKEN}"},
        )
    assert answer.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert answer.json()["citations"][0]["source"] == "gehalt.md"


# --- 4. an upload killed halfway (a real kill -9) --------------------------------------------------


def test_an_upload_killed_halfway_is_gone_after_restart(tmp_path):
    corpus, data_dir = tmp_path / "corpus", tmp_path / "data"
    corpus.mkdir()
    (corpus / "homeoffice-v1.md").write_text(HOMEOFFICE_V1, encoding="utf-8")
    env = {"ASSISTANT_JWT_SECRET": JWT_SECRET, "ASSISTANT_RATE_LIMIT_PER_MINUTE": "1000"}
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    # Long enough that its chunks are embedded in several batches (each one stored at once).
    sections = "\n\n".join(
        f"## Abschnitt {i}\n\nDie Kaffeemaschine im Gebäude {i} wird jeden Montag von Team "
        f"{i} entkalkt. " + "Weitere Hinweise zur Reinigung der Maschine. " * 12
        for i in range(400)
    )
    big = f"# Kaffeemaschinen-Ordnung\n\n{sections}\n".encode()
    proc, url = start_server(corpus, data_dir, env)
    try:
        upload = subprocess.Popen(
            [
                "curl", "-s", "-H", f"authorization: Bearer {ADMIN_TOKEN}",
                "-F", "files=@-;filename=kaffee.md;type=text/markdown",
                f"{url}/api/admin/documents",
            ],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        upload.stdin.write(big)
        upload.stdin.close()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # until the first batch of chunks is stored
            listed = httpx.get(f"{url}/api/admin/documents", headers=admin, timeout=30).json()
            if any(d["source"].startswith("upload:") and d["chunks"] for d in listed):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the upload never stored a chunk")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        upload.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    with running_app(corpus, data_dir, env) as url:
        listed = httpx.get(f"{url}/api/admin/documents", headers=admin, timeout=30).json()
        answer = httpx.post(
            f"{url}/api/ask",
            json={"question": "Wann wird die Kaffeemaschine im Gebäude 7 entkalkt?"},
            timeout=60,
        ).json()
    assert [d["source"] for d in listed] == ["homeoffice-v1.md"]
    assert all(not c["source"].startswith("upload:") for c in answer["citations"])
    assert not list((data_dir / "uploads").glob("*")) if (data_dir / "uploads").exists() else True
