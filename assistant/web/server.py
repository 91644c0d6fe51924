"""FastAPI application: JSON API, health check and the Gradio chat mounted at /."""

from __future__ import annotations

import logging
import threading

import gradio as gr
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from assistant.config import Settings
from assistant.index import KnowledgeBase
from assistant.pipeline import Assistant, QuestionError, build_assistant, build_knowledge_base
from assistant.web.ui import build_ui

log = logging.getLogger(__name__)


class Runtime:
    """The assistant behind the web app; ready once the store is loaded (ingested if empty or stale)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ready = threading.Event()
        self.error: str | None = None
        self.kb: KnowledgeBase | None = None
        self.assistant: Assistant | None = None

    def start(self) -> None:
        """Open the store and bring it in line with the corpus, in the background."""
        threading.Thread(target=self._load, name="startup-ingest", daemon=True).start()

    def _load(self) -> None:
        try:
            self.kb = build_knowledge_base(self.settings)
            report = self.kb.ingest(self.settings.corpus_dir)
            log.info(
                "corpus ready: %d chunks (%d embedded now), %d failed files",
                self.kb.count(),
                report.chunks_embedded,
                len(report.failed),
            )
            for failed in report.failed:
                log.warning("not ingested: %s: %s", failed["source"], failed["reason"])
            self.assistant = build_assistant(self.settings, self.kb)
            self.assistant.retriever.retrieve("warm-up")  # builds the BM25 index once
            self.ready.set()
        except Exception as exc:  # reported on /healthz instead of killing the server
            log.exception("startup failed")
            self.error = f"{type(exc).__name__}: {exc}"

    def get(self) -> Assistant:
        if not self.ready.is_set() or self.assistant is None:
            raise HTTPException(503, detail=self.error or "the knowledge base is still loading")
        return self.assistant


class AskRequest(BaseModel):
    question: str = Field(..., description="The employee's question, German or English.")
    history: list[dict] = Field(default_factory=list, description="Earlier turns (role, content).")


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """The whole web application for one settings object."""
    runtime = runtime or Runtime(settings)
    app = FastAPI(title="KI-Rollen-Assistent", version="0.1.0")
    app.state.runtime = runtime

    @app.get("/healthz")
    def healthz() -> dict:
        if not runtime.ready.is_set():
            raise HTTPException(503, detail=runtime.error or "loading")
        return {
            "status": "ok",
            "chunks": runtime.kb.count(),
            "corpus_version": runtime.kb.version(),
        }

    @app.post("/api/ask")
    def ask(request: AskRequest) -> dict:
        assistant = runtime.get()
        try:
            return assistant.ask(request.question).as_dict()
        except QuestionError as exc:
            raise HTTPException(422, detail=str(exc)) from exc

    app.router.on_startup.append(runtime.start)
    return gr.mount_gradio_app(app, build_ui(runtime), path="/", footer_links=[])
