"""The fake LLM server is faithful to both protocols, over real HTTP with httpx."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from fake_llm import EMPTY, GARBAGE, HANG, HTTP500, TRUNCATED, FakeLLM, Reply, pieces

TEXT = "Die Richtlinie gilt ab dem 1. März 2025 für alle Teams, die KI-Werkzeuge einsetzen."
MESSAGES = [
    {"role": "system", "content": "Antworte kurz."},
    {"role": "user", "content": "Ab wann gilt die Richtlinie?"},
]
OPENAI, OLLAMA = "/v1/chat/completions", "/api/chat"


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with FakeLLM(Reply.ok(TEXT)) as fake:
        yield fake


def chat(llm: FakeLLM, route: str, stream: bool, timeout: float = 5.0) -> httpx.Response:
    body = {"model": "m", "messages": MESSAGES, "stream": stream, "temperature": 0}
    return httpx.post(llm.url + route, json=body, timeout=timeout)


def openai_stream(llm: FakeLLM, **extra: object) -> tuple[list[dict], bool]:
    """The parsed SSE chunks and whether [DONE] came."""
    body = {"model": "m", "messages": MESSAGES, "stream": True, **extra}
    chunks, done = [], False
    with httpx.stream("POST", llm.url + OPENAI, json=body, timeout=5) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        for line in response.iter_lines():
            if line == "data: [DONE]":
                done = True
            elif line:
                chunks.append(json.loads(line.removeprefix("data: ")))
    return chunks, done


def ollama_stream(llm: FakeLLM, body: dict | None = None) -> list[dict]:
    body = body or {"model": "m", "messages": MESSAGES}  # no "stream": Ollama's default streams
    with httpx.stream("POST", llm.url + OLLAMA, json=body, timeout=5) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        return [json.loads(line) for line in response.iter_lines() if line]


def test_pieces_reassemble_to_the_text() -> None:
    for text in (TEXT, "", "  leading and trailing  ", "eins\n\nzwei  drei"):
        assert "".join(pieces(text)) == text
    assert len(pieces(TEXT)) > 3


def test_openai_non_streaming(llm: FakeLLM) -> None:
    response = chat(llm, OPENAI, stream=False)
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["model"] == "m"
    choice = data["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": TEXT, "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert (
        data["usage"]["total_tokens"]
        == data["usage"]["prompt_tokens"] + data["usage"]["completion_tokens"]
    )


def test_openai_streaming_reassembles(llm: FakeLLM) -> None:
    chunks, done = openai_stream(llm)
    assert done
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == TEXT
    assert len(chunks) == 2 + len(pieces(TEXT))


def test_openai_streaming_usage_chunk_on_request(llm: FakeLLM) -> None:
    chunks, done = openai_stream(llm, stream_options={"include_usage": True})
    assert done
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == len(TEXT.split())


def test_ollama_non_streaming(llm: FakeLLM) -> None:
    response = chat(llm, OLLAMA, stream=False)
    assert response.status_code == 200
    data = response.json()
    assert data["message"] == {"role": "assistant", "content": TEXT}
    assert data["done"] is True
    assert data["done_reason"] == "stop"
    assert data["model"] == "m"
    assert {"created_at", "total_duration", "eval_count"} <= data.keys()


def test_ollama_streams_by_default_and_reassembles(llm: FakeLLM) -> None:
    lines = ollama_stream(llm)
    assert [line["done"] for line in lines] == [False] * (len(lines) - 1) + [True]
    assert "".join(line["message"]["content"] for line in lines) == TEXT
    last = lines[-1]
    assert last["message"]["content"] == ""
    assert last["done_reason"] == "stop"
    assert {"total_duration", "eval_count"} <= last.keys()


def test_discovery_routes_and_404(llm: FakeLLM) -> None:
    assert httpx.get(llm.openai_url + "/models").json()["data"][0]["id"] == "fake:latest"
    assert httpx.get(llm.url + "/api/tags").json()["models"][0]["name"] == "fake:latest"
    assert httpx.get(llm.url + "/api/version").json() == {"version": "0.5.0"}
    for response in (
        httpx.get(llm.url + "/nope"),
        httpx.post(llm.url + "/v1/completions", json={}),
    ):
        assert response.status_code == 404
        assert "error" in response.json()
    assert llm.requests == []  # only chat requests are recorded


def test_script_runs_in_order_and_the_last_repeats(llm: FakeLLM) -> None:
    assert chat(llm, OPENAI, False).json()["choices"][0]["message"]["content"] == TEXT
    llm.script(Reply.ok("eins"), Reply.ok("zwei"))
    llm.script(Reply.ok("drei"))
    answers = [chat(llm, OLLAMA, False).json()["message"]["content"] for _ in range(5)]
    assert answers == ["eins", "zwei", "drei", "drei", "drei"]


def test_requests_are_recorded(llm: FakeLLM) -> None:
    chat(llm, OPENAI, stream=False)
    ollama_stream(llm, {"model": "qwen", "messages": MESSAGES, "options": {"num_ctx": 4096}})
    assert [r["model"] for r in llm.requests] == ["m", "qwen"]
    assert llm.requests[0]["messages"] == MESSAGES
    assert llm.requests[0]["temperature"] == 0
    assert llm.requests[1]["options"] == {"num_ctx": 4096}


def test_callable_reply_sees_the_messages(llm: FakeLLM) -> None:
    seen: list[list[dict]] = []

    def answer(messages: list[dict]) -> Reply:
        seen.append(messages)
        return Reply.ok("Frage war: " + messages[-1]["content"])

    llm.script(answer)
    chunks, _ = openai_stream(llm)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "Frage war: Ab wann gilt die Richtlinie?"
    assert seen == [MESSAGES]


@pytest.mark.parametrize("route", [OPENAI, OLLAMA])
@pytest.mark.parametrize("stream", [False, True])
def test_http500(llm: FakeLLM, route: str, stream: bool) -> None:
    llm.script(HTTP500)
    response = chat(llm, route, stream)
    assert response.status_code == 500
    error = response.json()["error"]
    if route == OPENAI:
        assert error == {"message": "scripted failure", "type": "server_error"}
    else:
        assert error == "scripted failure"


@pytest.mark.parametrize("route", [OPENAI, OLLAMA])
@pytest.mark.parametrize(
    ("status", "kind"), [(503, "server_error"), (400, "invalid_request_error")]
)
def test_http_error_with_any_status(llm: FakeLLM, route: str, status: int, kind: str) -> None:
    llm.script(Reply.http(status), Reply.ok("danach"))
    response = chat(llm, route, stream=True)
    assert response.status_code == status
    error = response.json()["error"]
    assert error == (
        {"message": "scripted failure", "type": kind} if route == OPENAI else "scripted failure"
    )
    assert chat(llm, route, stream=False).status_code == 200


@pytest.mark.parametrize("route", [OPENAI, OLLAMA])
def test_garbage_is_not_json(llm: FakeLLM, route: str) -> None:
    llm.script(GARBAGE)
    response = chat(llm, route, stream=False)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        response.json()
    streamed = chat(llm, route, stream=True)
    assert streamed.status_code == 200
    lines = [line for line in streamed.text.splitlines() if line]
    assert lines
    for line in lines:
        with pytest.raises(json.JSONDecodeError):
            json.loads(line.removeprefix("data: "))


@pytest.mark.parametrize("route", [OPENAI, OLLAMA])
def test_empty_is_well_formed(llm: FakeLLM, route: str) -> None:
    llm.script(EMPTY)
    data = chat(llm, route, stream=False).json()
    content = (
        data["choices"][0]["message"]["content"] if route == OPENAI else data["message"]["content"]
    )
    assert content == ""
    chunks, done = openai_stream(llm)
    assert done
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, "stop"]


def test_truncated_openai_stream_lacks_done(llm: FakeLLM) -> None:
    llm.script(TRUNCATED)
    chunks, done = openai_stream(llm)
    assert not done
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text and TRUNCATED.text.startswith(text) and text != TRUNCATED.text
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)


def test_truncated_ollama_stream_lacks_done(llm: FakeLLM) -> None:
    llm.script(TRUNCATED)
    lines = ollama_stream(llm)
    assert lines and not any(line["done"] for line in lines)
    text = "".join(line["message"]["content"] for line in lines)
    assert TRUNCATED.text.startswith(text) and text != TRUNCATED.text


@pytest.mark.parametrize("route", [OPENAI, OLLAMA])
def test_truncated_non_streaming_body_is_short(llm: FakeLLM, route: str) -> None:
    llm.script(TRUNCATED)
    with pytest.raises(httpx.RemoteProtocolError):
        chat(llm, route, stream=False)


# "At once" on a loaded 2-core machine: far below the 30 s a slow reply sleeps or a hang waits.
SOON = 10


def handler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "process_request_thread" in t.name]


def test_hang_times_out_and_close_releases_it() -> None:
    assert not handler_threads()
    llm = FakeLLM(HANG)
    try:
        with pytest.raises(httpx.ReadTimeout):
            chat(llm, OPENAI, stream=False, timeout=0.5)
        with pytest.raises(httpx.ReadTimeout):
            chat(llm, OLLAMA, stream=True, timeout=0.5)
    finally:
        start = time.monotonic()
        llm.close()
        assert time.monotonic() - start < SOON
    assert len(llm.requests) == 2
    while handler_threads() and time.monotonic() - start < SOON:  # the hung handlers were released
        time.sleep(0.02)
    assert not handler_threads()


def test_close_answers_a_waiting_client_with_a_disconnect() -> None:
    llm = FakeLLM(HANG)
    client = httpx.Client(timeout=10)
    try:
        threading.Timer(0.3, llm.close).start()
        start = time.monotonic()
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(llm.url + OPENAI, json={"model": "m", "messages": MESSAGES})
        assert time.monotonic() - start < SOON
    finally:
        client.close()
        llm.close()


def test_slow_answers_after_the_delay(llm: FakeLLM) -> None:
    llm.script(Reply.slow("spät", delay_s=0.4), Reply.ok("sofort"))
    start = time.monotonic()
    assert chat(llm, OLLAMA, stream=False).json()["message"]["content"] == "spät"
    assert time.monotonic() - start >= 0.4
    assert chat(llm, OLLAMA, stream=False).json()["message"]["content"] == "sofort"
    llm.script(Reply.slow("zu spät", delay_s=30))
    with pytest.raises(httpx.ReadTimeout):
        chat(llm, OPENAI, stream=False, timeout=0.3)
    start = time.monotonic()
    llm.close()  # interrupts the 30 s sleep
    assert time.monotonic() - start < SOON


def test_unknown_fault_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        Reply(fault="timeout")
