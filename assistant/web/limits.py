"""Request limits: questions per user per minute, a bounded number of questions in flight, and
the size of request headers (bodies: FastAPI's max_body_size)."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque

from starlette.responses import JSONResponse

log = logging.getLogger(__name__)


class RateLimiter:
    """Sliding one-minute window per key (user id, or client address when anonymous)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float:
        """0 if the key may ask now (and counts the question), else seconds until it may."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits[key]
            while hits and now - hits[0] >= 60:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return max(0.1, 60 - (now - hits[0]))
            hits.append(now)
            if len(self._hits) > 10_000:  # forget idle keys instead of growing forever
                for idle in [k for k, v in self._hits.items() if not v]:
                    del self._hits[idle]
            return 0.0


class BusyError(Exception):
    """Too many questions are waiting already."""


class Gate:
    """At most `concurrent` questions at once; at most `waiting` more queue for a slot."""

    def __init__(self, concurrent: int, waiting: int, wait_s: float = 30.0) -> None:
        self._slots = threading.BoundedSemaphore(concurrent)
        self._capacity = concurrent + waiting
        self._inside = 0
        self._lock = threading.Lock()
        self.wait_s = wait_s

    def __enter__(self) -> Gate:
        with self._lock:
            if self._inside >= self._capacity:
                raise BusyError("the assistant is busy; please try again in a moment")
            self._inside += 1
        if not self._slots.acquire(timeout=self.wait_s):
            with self._lock:
                self._inside -= 1
            raise BusyError("the assistant is busy; please try again in a moment")
        return self

    def __exit__(self, *exc) -> None:
        self._slots.release()
        with self._lock:
            self._inside -= 1


class HeaderLimit:
    """ASGI middleware: 431 for a request whose headers add up to more than `limit` bytes.

    The server (h11, see app.py) bounds what it buffers of a head that arrives slowly; a head
    that arrives at once is parsed whole, so its size is checked here, before anything reads it.
    """

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            size = sum(len(name) + len(value) for name, value in scope.get("headers") or ())
            if size > self.limit:
                log.info("request refused: headers of %d bytes, at most %d", size, self.limit)
                response = JSONResponse(
                    {"detail": f"request headers too large ({size} bytes, at most {self.limit})"},
                    status_code=431,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
