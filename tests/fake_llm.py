"""A real, scriptable HTTP server that speaks OpenAI's chat completions and Ollama's chat API.

For tests of code that calls an LLM over HTTP, without a model:

    with FakeLLM(Reply.ok("Hallo!")) as llm:
        client = OpenAI(base_url=llm.openai_url, api_key="x")   # Ollama: host=llm.url
        llm.script(HTTP500, Reply.ok("second try"))             # next replies; the last repeats
        llm.script(Reply.http(503), Reply.http(400))            # any HTTP error status
        ...
        assert llm.requests[-1]["messages"][0]["content"] == "..."

Routes: POST /v1/chat/completions (SSE when "stream": true), GET /v1/models, POST /api/chat
(NDJSON unless "stream": false, as in Ollama), GET /api/tags, GET /api/version, and POST
/v1/embeddings (a small made-up vector per input, the reply's text ignored); others are 404.
Streams are close-delimited (HTTP/1.1, `Connection: close`, no Content-Length); every response
closes its connection. A reply may fail on purpose: see `Reply.fault`. Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = frozenset({"http500", "http", "hang", "garbage", "empty", "truncated", "slow"})
MODEL = "fake:latest"


@dataclass(frozen=True)
class Reply:
    """One scripted answer. `fault`: None (answer `text`), "http500" (500 + JSON error), "http"
    (`status` + JSON error), "hang"
    (never answer until close()), "garbage" (200 but not JSON), "empty" (well-formed, content ""),
    "truncated" (half the stream then a cut; non-streaming: short body), "slow" (wait `delay_s`)."""

    text: str = ""
    fault: str | None = None
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0  # pause before each streamed chunk (a model generating slowly)
    status: int = 500  # the HTTP status of an "http" fault

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; expected one of {sorted(FAULTS)}")

    @classmethod
    def ok(cls, text: str) -> Reply:
        return cls(text=text)

    @classmethod
    def slow(cls, text: str, delay_s: float) -> Reply:
        return cls(text=text, fault="slow", delay_s=delay_s)

    @classmethod
    def http(cls, status: int) -> Reply:
        """An HTTP error answer: 503 (overloaded), 429 (rate limited), 400 (bad request), ..."""
        return cls(fault="http", status=status)


HTTP500 = Reply(fault="http500")
HANG = Reply(fault="hang")
GARBAGE = Reply(fault="garbage")
EMPTY = Reply(fault="empty")
TRUNCATED = Reply("Diese Antwort wird mitten im Satz abgeschnitten, bevor sie endet.", "truncated")

DEFAULT_REPLY = Reply.ok("Das ist eine Testantwort.")

ReplySource = Reply | Callable[[list[dict]], Reply]


def pieces(text: str, words: int = 3) -> list[str]:
    """`text` in pieces of a few words each; "".join(pieces(text)) == text."""
    tokens = re.findall(r"\S+\s*|\s+", text)
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]


class FakeLLM:
    """Context manager around the server: `with FakeLLM() as llm: llm.url` is http://127.0.0.1:PORT."""

    def __init__(self, reply: ReplySource = DEFAULT_REPLY) -> None:
        self.requests: list[dict] = []
        self._current: ReplySource = reply
        self._pending: deque[ReplySource] = deque()
        self._lock = threading.Lock()
        self.closed = threading.Event()  # hung and slow handlers wait on this
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def script(self, *replies: ReplySource) -> None:
        """Queue replies for the next requests in order; the last one repeats."""
        with self._lock:
            self._pending.extend(replies)

    def next_reply(self, body: dict) -> Reply:
        with self._lock:
            self.requests.append(body)
            if self._pending:
                self._current = self._pending.popleft()
            source = self._current
        return source if isinstance(source, Reply) else source(body.get("messages") or [])

    @property
    def openai_url(self) -> str:
        """The `base_url` for OpenAI clients."""
        return self.url + "/v1"

    def close(self) -> None:
        """Stop serving; hung and slow handlers return at once without answering."""
        with self._lock:
            if self.closed.is_set():
                return
            self.closed.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2)

    def __enter__(self) -> FakeLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeLLM


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        routes = {
            "/v1/models": {
                "object": "list",
                "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "fake"}],
            },
            "/api/tags": {"models": [{"name": MODEL, "model": MODEL, "size": 0, "digest": "0"}]},
            "/api/version": {"version": "0.5.0"},
        }
        if self.path in routes:
            self._json(200, routes[self.path])
        else:
            self._json(404, {"error": f"no route GET {self.path}"})

    def do_POST(self) -> None:
        if self.path not in ("/v1/chat/completions", "/api/chat", "/v1/embeddings"):
            self._json(404, {"error": f"no route POST {self.path}"})
            return
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            self._json(400, {"error": "request body is not JSON"})
            return
        openai = self.path.startswith("/v1/")
        # Ollama streams unless told not to; embeddings never stream.
        stream = bool(body.get("stream", not openai)) and self.path != "/v1/embeddings"
        reply = self.server.fake.next_reply(body)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up
            self._answer(reply, body, openai, stream)

    def _answer(self, reply: Reply, body: dict, openai: bool, stream: bool) -> None:
        closed = self.server.fake.closed
        if reply.fault == "hang" or (reply.fault == "slow" and closed.wait(reply.delay_s)):
            closed.wait()
            self.close_connection = True
            return  # no answer at all
        if reply.fault in ("http500", "http"):
            kind = "server_error" if reply.status >= 500 else "invalid_request_error"
            error = {"message": "scripted failure", "type": kind}
            self._json(reply.status, {"error": error if openai else "scripted failure"})
            return
        text = "" if reply.fault == "empty" else reply.text
        model = body.get("model") or MODEL
        if stream:
            self._stream(reply, body, openai, model, text)
        elif reply.fault == "garbage":
            self._send(200, "application/json", b"not json at all {{{")
        else:
            if self.path == "/v1/embeddings":
                payload = _openai_embeddings(model, body)
            elif openai:
                payload = _openai_full(model, text, body)
            else:
                payload = _ollama_line(model, text, body)
            data = json.dumps(payload).encode()
            if reply.fault == "truncated":  # promise twice the bytes we send, then cut
                self._send(200, "application/json", data, length=2 * len(data))
                self._cut()
            else:
                self._send(200, "application/json", data)

    def _stream(self, reply: Reply, body: dict, openai: bool, model: str, text: str) -> None:
        """SSE for OpenAI (ends with [DONE]), NDJSON for Ollama (ends with a done:true line)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream" if openai else "application/x-ndjson")
        self.send_header("Connection", "close")  # close-delimited body: no Content-Length
        self.end_headers()
        self.close_connection = True
        if reply.fault == "garbage":
            self._write([b"data: not json\n\n"] * 2 if openai else [b"not json at all {{{\n"])
            return
        parts = pieces(text)
        if openai:
            events = _openai_stream(model, parts, body)
            out = [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]
        else:
            events = [_ollama_line(model, p) for p in parts] + [_ollama_line(model, "", body, text)]
            out = [(json.dumps(e) + "\n").encode() for e in events]
        if reply.fault == "truncated":  # OpenAI's first event is the role-only one
            self._write(out[: len(parts) // 2 + (1 if openai else 0)], reply.chunk_delay_s)
            self._cut()
        else:
            self._write(out, reply.chunk_delay_s)

    def _write(self, chunks: Iterable[bytes], delay_s: float = 0.0) -> None:
        for chunk in chunks:
            if delay_s and self.server.fake.closed.wait(delay_s):
                return  # closed while trickling
            self.wfile.write(chunk)
            self.wfile.flush()

    def _cut(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, "application/json", json.dumps(obj).encode())

    def _send(self, status: int, ctype: str, data: bytes, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data) if length is None else length))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self._write([data])


def _count_words(body: dict) -> int:
    return sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])


def _openai_full(model: str, text: str, body: dict) -> dict:
    return {
        **_openai_head(model, "chat.completion"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(body, text),
    }


def _openai_embeddings(model: str, body: dict) -> dict:
    """One vector per input: its length in characters, its position, and 1.0."""
    texts = body.get("input") or []
    texts = [texts] if isinstance(texts, str) else texts
    data = [
        {"object": "embedding", "index": i, "embedding": [float(len(str(t))), float(i), 1.0]}
        for i, t in enumerate(texts)
    ]
    usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
    return {"object": "list", "data": data, "model": model, "usage": usage}


def _openai_stream(model: str, parts: list[str], body: dict) -> list[dict]:
    head = _openai_head(model, "chat.completion.chunk")

    def chunk(delta: dict, finish: str | None = None) -> dict:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**head, "choices": [choice]}

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": p}) for p in parts] + [chunk({}, "stop")]
    if (body.get("stream_options") or {}).get("include_usage"):
        out.append({**head, "choices": [], "usage": _usage(body, "".join(parts))})
    return out


def _openai_head(model: str, kind: str) -> dict:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
    }


def _usage(body: dict, text: str) -> dict:
    prompt, completion = _count_words(body), len(text.split())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _ollama_line(model: str, content: str, body: dict | None = None, text: str = "") -> dict:
    """A streamed piece; with the request `body`, the final line (whole answer `text`)."""
    line = {
        "model": model,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
        "message": {"role": "assistant", "content": content},
        "done": body is not None,
    }
    if body is not None:
        line |= {
            "done_reason": "stop",
            "total_duration": 1_000_000,
            "load_duration": 1_000,
            "prompt_eval_count": _count_words(body),
            "prompt_eval_duration": 1_000,
            "eval_count": len((text or content).split()),
            "eval_duration": 1_000,
        }
    return line
