"""The assistant assembled from its settings: the store (with its embedding model), the corpus
ingest, the uploads admin and the answering pipeline. The CLI, the web app's runtime and the tests
all build through `build_services`, so each part is made one way."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from langchain_core.embeddings import Embeddings

from assistant.admin.uploads import DocumentAdmin
from assistant.answering.pipeline import Assistant, build_assistant
from assistant.config import Settings
from assistant.ingest.corpus import IngestReport, ingest_corpus
from assistant.store.embeddings import build_embeddings
from assistant.store.knowledge_base import KnowledgeBase
from assistant.store.locks import IngestBusyError

log = logging.getLogger(__name__)

# When to bring the store in line with the corpus folder: always (the app's start), only when
# the store is empty (a question from the command line), or never.
Ingest = Literal["always", "if_empty", "never"]


@dataclass
class Services:
    settings: Settings
    kb: KnowledgeBase
    assistant: Assistant
    # What the ingest at build time did (empty when none ran or another writer held the store).
    report: IngestReport = field(default_factory=IngestReport)

    @cached_property
    def documents(self) -> DocumentAdmin:
        """The uploads admin, opened when first used (it writes the app database, which a
        question from the command line on a read-only data dir must not need)."""
        return DocumentAdmin(self.settings, self.kb)


def build_services(
    settings: Settings, *, ingest: Ingest = "if_empty", embeddings: Embeddings | None = None
) -> Services:
    """Open the store, ingest as asked, and build the pipeline over it. Another process that is
    ingesting the same store is not waited for: its changes arrive through the version marker."""
    kb = KnowledgeBase(settings, embeddings or build_embeddings(settings))
    report = IngestReport()
    if ingest == "always" or (ingest == "if_empty" and kb.count() == 0):
        try:
            report = ingest_corpus(kb, settings.corpus_dir)
        except IngestBusyError as exc:
            log.info("ingest skipped: %s", exc)
    return Services(settings, kb, build_assistant(settings, kb), report)
