"""The assistant behind the web app: the store loaded in the background, and the one way into an
answer that every entry point (API, chat page, widget, Gradio's endpoints) shares: the rate limit,
the concurrency gate and the audit log."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import gradio as gr
from fastapi import HTTPException, Request

from assistant.admin.uploads import DocumentAdmin
from assistant.answering.answer import Answer
from assistant.answering.pipeline import (
    Assistant,
    last_answer,
)
from assistant.config import Settings
from assistant.identity import (
    AnswerReceipts,
    Identity,
    LinkSigner,
    client_address,
    trusted_proxy,
)
from assistant.records.audit import AuditLog
from assistant.records.conversations import Conversations
from assistant.records.feedback import FeedbackStore
from assistant.records.retention import RetentionJob
from assistant.records.rollout import NotInStage, RolloutStore
from assistant.services import build_services
from assistant.store.embeddings import EmbeddingError
from assistant.store.knowledge_base import KnowledgeBase
from assistant.store.locks import IngestBusyError
from assistant.web import admin_auth
from assistant.web.admin_auth import AdminSessions
from assistant.web.limits import Gate, RateLimiter

log = logging.getLogger(__name__)


class RateLimited(Exception):
    """Too many questions from one user (or address) in the last minute."""

    def __init__(self, wait_s: float, per_minute: int) -> None:
        super().__init__(
            f"too many questions: at most {per_minute} per minute; try again in {wait_s:.0f} s"
        )
        self.wait_s = wait_s


class Runtime:
    """The assistant behind the web app; ready once the store is loaded (ingested if empty or stale)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ready = threading.Event()
        self.error: str | None = None
        # Why the startup ingest stopped early (store read-only, disk full): answers come from
        # what was stored before, and /healthz says so.
        self.ingest_error = ""
        self.retry_s = 30.0  # a failing embedding endpoint is tried again after this
        self.kb: KnowledgeBase | None = None
        self.assistant: Assistant | None = None
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.feedback = FeedbackStore(settings.feedback_url)
        self.audit = AuditLog(settings.feedback_url, settings.audit_retention_days)
        # Question text expires even when nobody asks: audit rows and feedback text, hourly.
        self.conversations = Conversations(self.feedback.engine, settings.audit_retention_days)
        self.retention = RetentionJob(
            self.audit,
            self.feedback.engine,
            settings.audit_retention_days,
            conversations=self.conversations,
        )
        self.links = LinkSigner(settings)
        self.receipts = AnswerReceipts(self.links.key)
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        # Ratings have a budget of their own: rating answers must not use up the questions.
        self.feedback_limiter = RateLimiter(settings.rate_limit_per_minute)
        self.gate = Gate(settings.max_concurrent_asks, settings.max_waiting_asks)
        self.admin_sessions = AdminSessions(self.links.key)
        self.documents: DocumentAdmin | None = None
        # Who may use the chat now (pilot, more groups, everyone): shared by the replicas.
        self.rollout = RolloutStore(self.feedback.engine)

    def start(self) -> None:
        """Open the store and bring it in line with the corpus, in the background."""
        threading.Thread(target=self._load, name="startup-ingest", daemon=True).start()
        self.retention.start()

    def _load(self) -> None:
        try:
            # Another replica (or ingest.py) writing the shared store is not waited for: what is
            # stored is served, and its changes show up through the corpus version marker.
            services = build_services(self.settings, ingest="always")
            self.kb, report = services.kb, services.report
            log.info(
                "corpus ready: %d chunks (%d embedded now), %d failed files",
                self.kb.count(),
                report.chunks_embedded,
                len(report.failed),
            )
            for failed in report.failed:
                log.warning("not ingested: %s: %s", failed["source"], failed["reason"])
            if report.error:
                log.error(
                    "startup ingest stopped, answering from the stored corpus: %s", report.error
                )
            self.ingest_error = report.error
            self.documents = services.documents
            self._reconcile_uploads()
            self.assistant = services.assistant
            self.assistant.retriever.retrieve("warm-up")  # builds the BM25 index once
            self.ready.set()
        except EmbeddingError as exc:
            # Nothing can be searched without the embedding endpoint; it may come back.
            log.error("startup: %s; trying again in %.0f s", exc, self.retry_s)
            self.error = str(exc)
            retry = threading.Timer(self.retry_s, self._load)
            retry.daemon = True
            retry.start()
        except Exception as exc:  # reported on /healthz instead of killing the server
            log.exception("startup failed")
            self.error = f"{type(exc).__name__}: {exc}"

    def _reconcile_uploads(self) -> None:
        """Remove what an upload interrupted by a crash left behind (never fails the start)."""
        if self.documents is None:
            return
        try:
            self.documents.reconcile()
        except IngestBusyError as exc:
            log.info("upload check skipped: %s", exc)
        except Exception as exc:  # noqa: BLE001 - a read-only store still answers
            log.error("upload check failed: %s", str(exc).splitlines()[0] if str(exc) else exc)

    def admit(self, who: Identity, address: str | None, limiter: RateLimiter | None = None) -> None:
        """Rate limit per user (per address when anonymous): RateLimited when exceeded."""
        key = who.user or f"ip:{address or 'unknown'}"
        wait = (limiter or self.limiter).retry_after(key)
        if wait:
            raise RateLimited(wait, self.settings.rate_limit_per_minute)

    def check_stage(self, who: Identity) -> None:
        """NotInStage when the rollout has not reached the asker's groups yet (admins may always
        try the chat). Checked once, when a question is admitted: a question already being
        answered finishes whatever the plan becomes meanwhile."""
        if self.settings.admin_group in who.groups:
            return
        try:
            self.rollout.check(who.groups)
        except NotInStage:
            raise
        except Exception as exc:  # noqa: BLE001 - an unreadable plan must not stop the chat
            log.error("rollout plan not readable, chat open: %s", str(exc).splitlines()[0])

    def address(self, request: Request | gr.Request | None) -> str | None:
        """The asker's address: the socket peer, or behind a trusted proxy the client it names."""
        client = getattr(request, "client", None)
        peer = client.host if client else None
        headers = getattr(request, "headers", None) or {}
        return client_address(headers, peer, self.settings)

    def ask_stream(
        self,
        who: Identity,
        address: str | None,
        question: str,
        history: list[dict] | None,
        channel: str,
    ) -> Iterator[str | Answer]:
        """The one way into an answer: the rollout stage (NotInStage), rate limit (RateLimited),
        readiness (HTTPException 503), the concurrency gate (BusyError), then the assistant's
        stream (an LLM's text as it grows, then the Answer), and the audit entry with the
        latency. QuestionError and EmbeddingError pass through for the caller to word."""
        self.check_stage(who)
        self.admit(who, address)
        assistant = self.get()
        started = time.monotonic()
        answer: Answer | None = None
        with self.gate:
            for event in assistant.ask_stream(question, history, who.groups):
                if isinstance(event, Answer):
                    answer = event
                else:
                    yield event
        if answer is None:
            raise RuntimeError("the answer stream ended without an answer")
        self.answered(who, answer, channel, round((time.monotonic() - started) * 1000))
        yield answer

    def ask(
        self,
        who: Identity,
        address: str | None,
        question: str,
        history: list[dict] | None,
        channel: str,
    ) -> Answer:
        """ask_stream's final Answer."""
        return last_answer(self.ask_stream(who, address, question, history, channel))

    def answered(
        self, who: Identity, answer: Answer, channel: str, latency_ms: int | None = None
    ) -> None:
        """Audit trail entry for an answer, with how long it took (never fails the answer)."""
        try:
            self.audit.record(who, answer, channel, latency_ms)
        except Exception as exc:  # noqa: BLE001 - a full disk must not take the chat down
            # One line per answer (a read-only or full store fails every write the same way).
            log.error("audit log write failed: %s", str(exc).splitlines()[0] if str(exc) else exc)

    def require_admin(self, request) -> Identity:
        """The admin behind a request (FastAPI or Gradio); AdminDenied (401/403) otherwise."""
        return admin_auth.require_admin(request, self.settings, self.admin_sessions)

    def documents_admin(self) -> DocumentAdmin:
        self.get()
        assert self.documents is not None  # set before ready
        return self.documents

    def knowledge_base(self) -> KnowledgeBase:
        """The loaded knowledge base (NotReady-like RuntimeError before it is)."""
        self.get()
        assert self.kb is not None  # set before ready
        return self.kb

    def get(self) -> Assistant:
        if not self.ready.is_set() or self.assistant is None:
            raise HTTPException(503, detail=self.error or "the knowledge base is still loading")
        return self.assistant

    def public_base(self, request: Request | gr.Request | None) -> str:
        """The server's public URL (setting, else as the request reached us), without a trailing /."""
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        if request is None:
            return ""
        headers = getattr(request, "headers", {}) or {}
        client = getattr(request, "client", None)
        # X-Forwarded-Host/-Proto count only from a trusted proxy: anyone else could make the
        # embed snippet and the answers' links name another site, or drop the cookies' Secure.
        forwarded = trusted_proxy(client.host if client else None, self.settings)
        host = forwarded and headers.get("x-forwarded-host") or headers.get("host", "")
        scheme = (
            forwarded
            and headers.get("x-forwarded-proto")
            or getattr(getattr(request, "url", None), "scheme", "http")
        )
        return f"{scheme}://{host}" if host else ""
