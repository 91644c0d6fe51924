"""The two writer locks of one store: "open" while its tables are created, "ingest" while it is
written. With PostgreSQL records they are advisory locks in that database, shared by every machine
that writes the store; with SQLite, file locks in the data dir (filelock: flock on Linux, released
by the kernel when a process dies, even under kill -9)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout
from sqlalchemy.engine import Engine

from assistant.config import Settings
from assistant.store.database import advisory_lock, is_shared


class IngestBusyError(RuntimeError):
    """Another ingest holds the lock on this data dir."""


class StoreLocks:
    def __init__(self, settings: Settings, engine: Engine, read_only: bool) -> None:
        self.settings = settings
        self.engine = engine
        self.read_only = read_only

    def _shared(self, name: str, wait: bool):
        """PostgreSQL advisory lock `name` for this collection (every machine sees it)."""
        return advisory_lock(
            self.engine, f"assistant/{name}/{self.settings.collection_name}", wait=wait
        )

    @contextmanager
    def creation(self) -> Iterator[None]:
        """Hold off other processes while the store's tables are created: two ingests started
        together on a fresh data dir would otherwise both create them, and one fail."""
        if self.read_only:
            yield
        elif is_shared(self.engine):
            with self._shared("open", wait=True):
                yield
        else:
            with FileLock(self.settings.data_dir / "open.lock"):
                yield

    @contextmanager
    def ingest(self) -> Iterator[None]:
        """The ingest lock, at once or IngestBusyError."""
        if is_shared(self.engine):
            with self._shared("ingest", wait=False) as got:
                if not got:
                    raise IngestBusyError(
                        f"another ingest is running on collection {self.settings.collection_name}"
                        f" of {self.settings.chroma_url or self.settings.data_dir}; try again "
                        "when it ends"
                    )
                yield
            return
        lock = FileLock(self.settings.data_dir / "ingest.lock", timeout=0)
        try:
            lock.acquire()
        except Timeout as exc:
            raise IngestBusyError(
                f"another ingest is running on {self.settings.data_dir}; try again when it ends"
            ) from exc
        try:
            yield
        finally:
            lock.release()
