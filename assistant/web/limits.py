"""Request limits: questions per user per minute, and a bounded number of questions in flight."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque


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
