"""The LLM endpoint: the chat model the settings name (any OpenAI-compatible endpoint or Ollama,
through langchain), and the Generator that calls it under one deadline.

A transient fault before the first word (unreachable, timeout, 5xx, 429) is retried with
exponential backoff (tenacity), never past the deadline; any other 4xx, and anything after the
first word, is not (the reader has seen part of the answer). After repeated failed calls a
breaker skips the endpoint for a while instead of making every employee wait for the timeout.
Every failure ends as an LLMError, for which the caller shows the extractive answer.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import threading
import time
from collections.abc import Iterator

import httpx
from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    stop_when_event_set,
    wait_exponential,
)

from assistant.config import Settings

log = logging.getLogger(__name__)


class LLMError(Exception):
    """The endpoint failed; `kind` is one of "unavailable", "timeout", "invalid"."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


def build_chat_model(settings: Settings) -> BaseChatModel | None:
    """The configured chat model, or None for the extractive-only default."""
    if settings.llm_provider == "none":
        return None
    if not settings.llm_model or not settings.llm_base_url:
        raise ValueError(
            f"ASSISTANT_LLM_PROVIDER={settings.llm_provider} needs ASSISTANT_LLM_BASE_URL "
            "and ASSISTANT_LLM_MODEL"
        )
    if settings.llm_provider == "openai":
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            model=settings.llm_model,
            base_url=settings.llm_base_url,
            # Local servers (vLLM, LM Studio) accept any key; the client insists on one.
            api_key=SecretStr(settings.llm_api_key.get_secret_value() or "not-needed"),
            temperature=settings.llm_temperature,
            timeout=settings.llm_timeout_s,
            max_retries=0,  # Generator retries, within the deadline of the whole LLM step
        )
    from langchain_ollama import ChatOllama

    return ChatOllama(
        model=settings.llm_model,
        base_url=settings.llm_base_url,
        temperature=settings.llm_temperature,
        client_kwargs={"timeout": settings.llm_timeout_s},
    )


def _finished(metadata: dict) -> bool:
    """Whether a stream chunk says the model finished (OpenAI finish_reason, Ollama done)."""
    return bool(metadata.get("finish_reason") or metadata.get("done") is True)


def transient(exc: BaseException) -> bool:
    """Whether a failed call may succeed when repeated: the endpoint unreachable or too slow
    (in the exception or its cause), a 5xx or 429; never another 4xx or an unusable reply."""
    status = getattr(exc, "status_code", None)  # openai.APIStatusError, ollama.ResponseError
    if isinstance(status, int):
        return status == 429 or status >= 500
    causes = (exc, exc.__cause__)  # openai wraps httpx's error; ollama raises ConnectionError
    return any(isinstance(e, ConnectionError | TimeoutError | httpx.TransportError) for e in causes)


class Generator:
    """Runs the chat model with a hard deadline: output streams through a queue from a helper
    thread, so a hung or trickling endpoint costs the caller at most the time left.

    Opening the stream is retried (`attempts` in all, waits from `backoff_s` doubling, never past
    the deadline); after repeated failed calls a breaker skips the endpoint for `breaker_s`."""

    def __init__(
        self,
        model: BaseChatModel,
        breaker_failures: int = 3,
        breaker_s: float = 30.0,
        attempts: int = 3,
        backoff_s: float = 0.5,
    ):
        self.model = model
        self.breaker_failures = breaker_failures
        self.breaker_s = breaker_s
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._failures = 0
        self._open_until = 0.0
        self._lock = threading.Lock()

    def _record(self, ok: bool) -> None:
        with self._lock:
            self._failures = 0 if ok else self._failures + 1
            if self._failures >= self.breaker_failures:
                # After repeated failures, skip the endpoint for a while instead of making every
                # employee wait for the timeout.
                self._open_until = time.monotonic() + self.breaker_s

    def stream(self, messages: list, deadline: float) -> Iterator[str]:
        """The model's text in pieces; LLMError if the endpoint fails or the deadline passes."""
        if time.monotonic() < self._open_until:
            raise LLMError("unavailable", "skipped after repeated failures")
        pieces: queue.Queue = queue.Queue()
        cancelled = threading.Event()

        def produce() -> None:
            finished = False
            try:
                for chunk in self._opened(messages, deadline, cancelled):
                    if cancelled.is_set():
                        return
                    finished = finished or _finished(chunk.response_metadata or {})
                    if isinstance(chunk.content, str) and chunk.content:
                        pieces.put(("text", chunk.content))
                pieces.put(("end", finished))
            except Exception as exc:  # noqa: BLE001 - every client error means "use the fallback"
                pieces.put(("error", exc))

        threading.Thread(target=produce, daemon=True, name="llm-stream").start()
        ok = False
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LLMError("timeout", "deadline passed")
                try:
                    kind, value = pieces.get(timeout=remaining)
                except queue.Empty:
                    raise LLMError("timeout", "deadline passed") from None
                if kind == "text":
                    yield value
                elif kind == "end":
                    if not value:
                        raise LLMError("invalid", "stream ended without a finish marker")
                    ok = True
                    return
                else:
                    raise _classify(value) from value
        finally:
            cancelled.set()
            self._record(ok)

    def _opened(self, messages: list, deadline: float, cancelled: threading.Event) -> Iterator:
        """The model's stream once its first chunk is in: a transient fault until then is
        retried; one after it is not (the reader has seen part of the answer)."""

        def first_chunk() -> Iterator:
            stream = iter(self.model.stream(messages))
            first = next(stream, None)
            return itertools.chain([] if first is None else [first], stream)

        def pause(seconds: float) -> None:
            cancelled.wait(seconds)  # over at once when the caller gave up

        retrying = Retrying(
            retry=retry_if_exception(transient),
            stop=stop_after_attempt(self.attempts)
            | stop_before_delay(max(deadline - time.monotonic(), 0.0))
            | stop_when_event_set(cancelled),
            wait=wait_exponential(multiplier=self.backoff_s, max=8 * self.backoff_s),
            sleep=pause,
            before_sleep=before_sleep_log(log, logging.INFO),
            reraise=True,
        )
        return retrying(first_chunk)

    def complete(self, messages: list, deadline: float) -> str:
        return "".join(self.stream(messages, deadline))


def _classify(exc: Exception) -> LLMError:
    name = type(exc).__name__.lower()
    if "timeout" in name:
        return LLMError("timeout", str(exc))
    if isinstance(exc, json.JSONDecodeError | ValueError | KeyError | TypeError):
        return LLMError("invalid", f"{type(exc).__name__}: {exc}")
    return LLMError("unavailable", f"{type(exc).__name__}: {exc}")
