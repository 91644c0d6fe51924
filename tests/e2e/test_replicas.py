"""Two app replicas (two real `app.py` processes, each with its own data dir as on two machines) on
one Chroma server and one PostgreSQL: an ingest run elsewhere reaches both without a restart,
feedback and the audit trail land in the shared database, a link one signs opens on the other."""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest import run_ingest, store_env, write_markdown, write_text
from servers import unique_name

from assistant.config import Settings
from assistant.identity import LinkSigner
from assistant.records.audit import AuditLog
from assistant.records.feedback import FeedbackStore
from assistant.search.snapshot import CHECK_S
from e2e.conftest import JWT_SECRET, make_token, start_server

SESSION_SECRET = "replicas-share-this-signing-key-0123456789"  # noqa: S105 (a test fixture)
QUESTION = "Wie lange dauert das Sabbatical für Quantenforscher?"
NEW_DOC = (
    "---\ntitle: Sabbatical für Quantenforscher\nowner: HR – Mia Wolf\n"
    "effective_date: 2025-05-01\naudience: all\nlanguage: de\n---\n"
    "# Sabbatical für Quantenforscher\n\n## Dauer\n\n"
    "Quantenforscher erhalten nach fünf Jahren ein Sabbatical von drei Monaten.\n"
)
HR_DOC = (
    "---\ntitle: Gehaltsbänder Quantenforschung\nowner: HR\neffective_date: 2025-01-01\n"
    "audience: hr\nlanguage: de\n---\n# Gehaltsbänder\n\n## Band Q1\n\n"
    "Das Band Q1 reicht von 70.000 bis 85.000 Euro.\n"
)


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, chroma_server, postgres):
    """(corpus, store settings, [replica URLs]): both started together on an empty store."""
    tmp_path = tmp_path_factory.mktemp("replicas")
    corpus = tmp_path / "corpus"
    write_markdown(corpus / "reisekosten.md")
    write_text(corpus / "prozesse" / "wartung.txt")
    (corpus / "personal").mkdir()
    (corpus / "personal" / "gehalt.md").write_text(HR_DOC, encoding="utf-8")
    store = {
        "chroma_url": chroma_server.url,
        "collection_name": unique_name("replicas"),
        "database_url": postgres.create_database(),
    }
    env = {
        **store_env(store),
        "ASSISTANT_SESSION_SECRET": SESSION_SECRET,
        "ASSISTANT_JWT_SECRET": JWT_SECRET,
        "ASSISTANT_RATE_LIMIT_PER_MINUTE": "1000",
    }
    machines = [tmp_path / name for name in ("machine-a", "machine-b")]
    for machine in machines:
        machine.mkdir()
    with ThreadPoolExecutor(2) as pool:
        # Two apps loading at once on a busy 2-core machine: a generous wait for readiness.
        started = list(
            pool.map(lambda m: start_server(corpus, m / "data", env, timeout=600), machines)
        )
    yield corpus, store, [url for _, url in started]
    for proc, _ in started:
        proc.terminate()
    for proc, _ in started:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def ask(url: str) -> dict:
    response = httpx.post(f"{url}/api/ask", json={"question": QUESTION}, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


def cited(answer: dict) -> set[str]:
    return {c["source"] for c in answer["citations"]}


def test_two_replicas_share_one_store_and_one_database(replicas, tmp_path):
    corpus, store, urls = replicas
    assert all("quanten.md" not in cited(ask(url)) for url in urls)

    (corpus / "quanten.md").write_text(NEW_DOC, encoding="utf-8")
    report = run_ingest(corpus, tmp_path / "ingest-machine" / "data", store)
    assert report["added"] == ["quanten.md"]
    answers = [ask(url) for url in urls]  # the next question sees it: no restart, no timer
    for answer in answers:
        assert answer["answered"] and answer["citations"][0]["source"] == "quanten.md"
        assert "drei Monaten" in answer["citations"][0]["text"]

    (corpus / "quanten.md").unlink()
    report = run_ingest(corpus, tmp_path / "ingest-machine" / "data", store)
    assert report["deleted"] == ["quanten.md"]
    assert all("quanten.md" not in cited(ask(url)) for url in urls)

    rated = {**answers[1], "rating": 1, "comment": "stimmt"}
    response = httpx.post(f"{urls[1]}/api/feedback", json=rated, timeout=30)
    assert response.status_code == 200, response.text
    rows = FeedbackStore(store["database_url"]).all()
    assert [(r["id"], r["question"], r["comment"]) for r in rows] == [
        (response.json()["id"], QUESTION, "stimmt")
    ]
    # Six questions, three on each replica: one audit trail.
    assert len(AuditLog(store["database_url"], 30).rows()) == 6


def test_a_link_one_replica_signs_opens_on_the_other(replicas):
    """With the same ASSISTANT_SESSION_SECRET every replica checks the others' signed links."""
    _, _, urls = replicas
    source = "personal/gehalt.md"
    signed = LinkSigner(Settings(_env_file=None, session_secret=SESSION_SECRET)).sign(source)
    forged = LinkSigner(Settings(_env_file=None, session_secret="another-key" * 4)).sign(source)
    for url in urls:
        assert httpx.get(f"{url}/files/{source}", timeout=30).status_code == 404
        assert httpx.get(f"{url}/files/{source}?{forged}", timeout=30).status_code == 404
        response = httpx.get(f"{url}/files/{source}?{signed}", timeout=30)
        assert response.status_code == 200 and "Band Q1" in response.text


def test_an_upload_through_one_replica_is_answered_and_deleted_through_the_other(replicas):
    """The admin's upload and delete reach the other replica at its first question once its
    version check is due (another process's marker is read at most every CHECK_S seconds); the
    uploaded file, kept in the shared database, is served by a replica that never saw it on disk."""
    _, _, (first, second) = replicas
    question = "Wer genehmigt Drohnenflüge über dem Lager?"
    text = "# Drohnenflüge\n\n## Genehmigung\n\nDrohnenflüge über dem Lager genehmigt die Werkfeuerwehr.\n"
    with httpx.Client(timeout=120) as client:
        # Sign in on the first replica; the session cookie holds on the second one too.
        login = client.get(
            f"{first}/admin/login", params={"token": make_token("hr-admin", ("admin",))}
        )
        assert login.status_code == 303
        # A change with the session cookie must come from an admin page (CSRF check).
        upload = client.post(
            f"{first}/api/admin/documents",
            headers={"referer": f"{first}/admin/"},
            files=[("files", ("drohnen.md", text.encode(), "text/markdown"))],
            data={"owner": "Werkschutz"},
        )
        [result] = upload.json()["results"]
        assert result["status"] == "indexed", result
        source = result["source"]

        def answer(url):
            return client.post(f"{url}/api/ask", json={"question": question}).json()

        time.sleep(CHECK_S + 0.2)  # the second replica may have checked just before the upload
        reply = answer(second)
        assert [c["source"] for c in reply["citations"]][:1] == [source], reply
        assert "Werkfeuerwehr" in client.get(f"{second}/files/{source}").text
        listed = client.get(f"{second}/api/admin/documents").json()
        assert any(d["source"] == source and d["owner"] == "Werkschutz" for d in listed)

        deleted = client.delete(
            f"{second}/api/admin/documents/{source}", headers={"referer": f"{second}/admin/"}
        )
        assert deleted.status_code == 200
        time.sleep(CHECK_S + 0.2)
        assert source not in cited(answer(first))
        assert client.get(f"{first}/files/{source}").status_code == 404
