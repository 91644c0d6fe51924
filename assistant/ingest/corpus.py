"""From the corpus folder into the store: read every file, cut it into chunks and units, and bring
the knowledge base in line (add new files, replace changed ones, delete removed ones).

The store decides what is unchanged (langchain's indexing API compares content hashes), so an
ingest with nothing changed embeds nothing. A file that fails to load is reported and skipped;
whatever was stored for it before stays.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from langchain_core.documents import Document

from assistant.config import Settings
from assistant.ingest.chunking import split_document, unit_documents
from assistant.ingest.documents import (
    DocumentError,
    SourceDocument,
    discover,
    load_document,
    source_name,
)
from assistant.store.failures import READ_ONLY, store_failure
from assistant.store.knowledge_base import KnowledgeBase, is_upload
from assistant.store.locks import IngestBusyError

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    """Summary of one ingest run (printed as text or as one JSON object)."""

    files_seen: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    chunks_total: int = 0
    chunks_embedded: int = 0
    units_embedded: int = 0  # sentences, bullets and rows of the chunks embedded now
    chunks_deleted: int = 0
    # Stored units given their latent terms apart from the units embedded now (a store from
    # before they existed, an interrupted write; store/latent.py).
    latent_mended: int = 0
    seconds: float = 0.0
    # Why the run stopped before the end (the store could not be written); files it did not reach
    # keep what was stored for them.
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.failed and not self.error

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def read(settings: Settings, path: Path, root: Path) -> SourceDocument:
    """One file under root, loaded with the configured size limit and default audience."""
    return load_document(
        path,
        root,
        max_bytes=int(settings.max_file_mb * 1_000_000),
        default_audience=settings.default_audience,
    )


def chunk(settings: Settings, doc: SourceDocument) -> list[Document]:
    """A loaded document's chunks at the configured chunk size."""
    return split_document(doc, settings.chunk_size, settings.chunk_overlap)


def replace_source(kb: KnowledgeBase, source: str, chunks: list[Document]) -> dict:
    """Store one document's chunks (and their units) in place of what was stored for it; the new
    version is searchable at once."""
    return kb.replace_source(source, chunks, unit_documents(chunks))


def ingest_corpus(
    kb: KnowledgeBase,
    corpus_dir: Path,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> IngestReport:
    """Bring the store in line with corpus_dir.

    A store that cannot be written (read-only, disk full) ends the run with `report.error`;
    nothing stored before is lost, since new chunks are added before old ones are deleted.
    """
    started = time.perf_counter()
    report = IngestReport()
    if not corpus_dir.is_dir():
        raise FileNotFoundError(f"corpus folder not found: {corpus_dir}")
    if kb.read_only:
        report.error = READ_ONLY.format(kb.settings.data_dir)
        return report
    try:
        with kb.writing():
            loaded, present = _load_corpus(kb.settings, corpus_dir, report)
            if on_total:
                on_total(sum(len(chunks) for _, chunks in loaded))
            _write(kb, loaded, present, report, progress)
    except IngestBusyError:
        raise
    except Exception as exc:
        report.error = store_failure(exc, kb.settings.data_dir)
        if not report.error:
            raise
        log.error("ingest stopped: %s", report.error)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _load_corpus(
    settings: Settings, corpus_dir: Path, report: IngestReport
) -> tuple[list[tuple[str, list[Document]]], set[str]]:
    """Chunks of every loadable file, and the source names of all files found (a file that fails
    to load is still present: its stored chunks stay)."""
    paths = discover(corpus_dir)
    report.files_seen = len(paths)
    loaded: list[tuple[str, list[Document]]] = []
    present: set[str] = set()
    for path in paths:
        source = source_name(path, corpus_dir)
        try:
            if source in present:
                raise DocumentError(
                    "another file has the same name once Unicode is normalised (NFC); "
                    "rename one of them"
                )
            present.add(source)
            chunks = chunk(settings, read(settings, path, corpus_dir))
        except DocumentError as exc:
            log.warning("skipped %s: %s", source, exc)
            report.failed.append({"source": source, "reason": str(exc)})
            continue
        loaded.append((source, chunks))
    return loaded, present


def _write(
    kb: KnowledgeBase,
    loaded: list[tuple[str, list[Document]]],
    present: set[str],
    report: IngestReport,
    progress: Callable[[int], None] | None,
) -> None:
    """Store the loaded files and drop removed ones; move the version marker if anything changed,
    even when a write fails halfway (readers must see what did change)."""
    changed = False
    try:
        dropped, report.latent_mended = kb.reconcile()
        changed = dropped > 0
        stored = kb.stored_sources()
        for source, chunks in loaded:
            result = kb.store_source(chunks, unit_documents(chunks))
            report.chunks_total += len(chunks)
            report.chunks_embedded += result["num_added"]
            report.units_embedded += result["units_added"]
            report.chunks_deleted += result["num_deleted"]
            if result["num_added"] or result["num_deleted"]:
                changed = True
                (report.updated if source in stored else report.added).append(source)
            elif result["units_added"] or result["units_deleted"] or result["headings_added"]:
                # The same chunks split into other units (a new splitter), or headings
                # embedded for a store from before them: searched anew.
                changed = True
                report.updated.append(source)
            else:
                report.skipped.append(source)
            if progress:
                progress(len(chunks))
        # Uploaded documents are not files of the corpus folder: only the admin deletes them.
        for source in sorted(s for s in stored - present if not is_upload(s)):
            report.chunks_deleted += kb.delete_source(source)
            report.deleted.append(source)
            changed = True
    finally:
        if changed:
            kb.bump_version()
