"""Why the store cannot be written, and a read-only store's private copy: the reasons an ingest or
an upload gives when the disk is full or the data dir is not this process's to write."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from pathlib import Path

from assistant.config import Settings

log = logging.getLogger(__name__)

RECORDS_FILE = "records.sqlite"
READ_ONLY = "store is read-only: {}; make it writable for this user to ingest"


def writable(settings: Settings) -> bool:
    """Whether this process may write every part of the store that exists already."""
    chroma = settings.chroma_dir
    parts = [
        settings.data_dir,
        settings.data_dir / RECORDS_FILE,
        settings.data_dir / "ingest.lock",
    ]
    if chroma.exists():
        parts += [chroma, *chroma.rglob("*")]
    return all(os.access(part, os.W_OK) for part in parts if part.exists())


def private_copy(settings: Settings) -> tempfile.TemporaryDirectory:
    """A private, writable copy of a read-only store, removed when the process ends."""
    log.warning("store %s is read-only: answering from a copy, ingest disabled", settings.data_dir)
    snapshot = tempfile.TemporaryDirectory(prefix="assistant-store-")
    target = Path(snapshot.name)
    if settings.chroma_dir.exists():
        copy = target / settings.chroma_dir.name
        shutil.copytree(settings.chroma_dir, copy, copy_function=shutil.copyfile)
        for folder in [copy, *(p for p in copy.rglob("*") if p.is_dir())]:
            folder.chmod(0o700)  # copytree copied the read-only mode of the folders
    if (settings.data_dir / RECORDS_FILE).exists():
        shutil.copyfile(settings.data_dir / RECORDS_FILE, target / RECORDS_FILE)
    return snapshot


def store_failure(exc: BaseException, data_dir: Path) -> str:
    """A clear reason if exc, or an error behind it, means the store cannot be written; else "".

    Chroma and SQLAlchemy wrap the operating system's error, often only as message text.
    """
    cause: BaseException | None = exc
    while cause is not None:
        text = str(cause).lower()
        code = cause.errno if isinstance(cause, OSError) else None
        if code in (errno.ENOSPC, errno.EDQUOT) or "disk is full" in text:
            return f"no space left on device while writing the store in {data_dir}"
        if code == errno.EROFS or "readonly database" in text or _denied_in(cause, data_dir):
            return READ_ONLY.format(data_dir)
        cause = cause.__cause__ or cause.__context__
    return ""


def _denied_in(exc: BaseException, data_dir: Path) -> bool:
    """Whether exc is a permission error on a file of the store (not, say, of the corpus)."""
    if not isinstance(exc, PermissionError) or exc.filename is None:
        return False
    return Path(os.fsdecode(exc.filename)).absolute().is_relative_to(data_dir.absolute())
