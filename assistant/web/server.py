"""FastAPI application: JSON API, corpus files, widget script, and the Gradio chat at / and /embed."""

from __future__ import annotations

import html
import logging
import threading
from pathlib import Path

import gradio as gr
from fastapi import FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.middleware.base import BaseHTTPMiddleware

from assistant.config import Settings
from assistant.documents import is_corpus_file
from assistant.feedback import FeedbackStore
from assistant.index import KnowledgeBase
from assistant.pipeline import Assistant, QuestionError, build_assistant, build_knowledge_base
from assistant.web.ui import CSS, build_ui

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")


class Runtime:
    """The assistant behind the web app; ready once the store is loaded (ingested if empty or stale)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ready = threading.Event()
        self.error: str | None = None
        self.kb: KnowledgeBase | None = None
        self.assistant: Assistant | None = None
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.feedback = FeedbackStore(settings.feedback_url)

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

    def public_base(self, request: Request | gr.Request | None) -> str:
        """The server's public URL (setting, else as the request reached us), without a trailing /."""
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        if request is None:
            return ""
        headers = getattr(request, "headers", {}) or {}
        host = headers.get("x-forwarded-host") or headers.get("host", "")
        scheme = headers.get("x-forwarded-proto") or getattr(
            getattr(request, "url", None), "scheme", "http"
        )
        return f"{scheme}://{host}" if host else ""


class AskRequest(BaseModel):
    question: str = Field(..., description="The employee's question, German or English.")
    history: list[dict] = Field(
        default_factory=list,
        max_length=50,
        description='Earlier turns, oldest first: [{"role": "user", "content": "..."}, ...]; '
        "used to complete follow-up questions.",
    )


class SecurityHeaders(BaseHTTPMiddleware):
    """Who may frame our pages (CSP frame-ancestors), no MIME sniffing, and a body size limit."""

    def __init__(self, app, frame_ancestors: str, max_body: int) -> None:
        super().__init__(app)
        self.frame_ancestors = frame_ancestors
        self.max_body = max_body

    async def dispatch(self, request: Request, call_next):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > self.max_body:
            return JSONResponse(
                {"detail": f"request body too large ({length} bytes, at most {self.max_body})"},
                status_code=413,
            )
        response = await call_next(request)
        csp = response.headers.get("content-security-policy")
        ancestors = f"frame-ancestors {self.frame_ancestors}"
        response.headers["content-security-policy"] = f"{csp}; {ancestors}" if csp else ancestors
        response.headers.setdefault("x-content-type-options", "nosniff")
        response.headers.setdefault("referrer-policy", "same-origin")
        return response


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """The whole web application for one settings object."""
    runtime = runtime or Runtime(settings)
    app = FastAPI(
        title="KI-Rollen-Assistent",
        version="0.1.0",
        description="Cited answers about AI roles and the company's AI policies.",
    )
    app.state.runtime = runtime
    origins = settings.embed_origin_list

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict:
        """200 once the index is loaded and answering, 503 before."""
        if not runtime.ready.is_set():
            raise HTTPException(503, detail=runtime.error or "loading")
        return {
            "status": "ok",
            "chunks": runtime.kb.count(),
            "corpus_version": runtime.kb.version(),
        }

    @app.post("/api/ask", tags=["chat"])
    def ask(request: AskRequest) -> dict:
        """Answer a question with cited passages (same JSON as `python -m assistant ask --json`)."""
        assistant = runtime.get()
        try:
            return assistant.ask(request.question, request.history).as_dict()
        except QuestionError as exc:
            raise HTTPException(422, detail=str(exc)) from exc

    @app.get("/files/{source:path}", tags=["documents"], include_in_schema=False)
    def corpus_file(source: str) -> Response:
        """A corpus document, read-only; only files that are part of the corpus, never anything else."""
        path = settings.corpus_dir / source
        if not is_corpus_file(path, settings.corpus_dir):
            raise HTTPException(404, detail="no such document")
        headers = {"cache-control": "no-store"}
        if path.suffix.lower() in (".html", ".htm"):
            # A document's own HTML must not run in our origin.
            headers["content-security-policy"] = (
                "sandbox; default-src 'none'; style-src 'unsafe-inline'"
            )
        media = {".md": "text/plain; charset=utf-8", ".txt": "text/plain; charset=utf-8"}
        return FileResponse(path, media_type=media.get(path.suffix.lower()), headers=headers)

    @app.get("/widget.js", include_in_schema=False)
    def widget_js() -> Response:
        """The loader HR pastes into the intranet: a floating button that opens the chat widget."""
        return Response(
            (STATIC / "widget.js").read_text(encoding="utf-8"),
            media_type="application/javascript; charset=utf-8",
            headers={"cache-control": "max-age=300"},
        )

    @app.get("/embed/snippet", include_in_schema=False)
    def snippet(request: Request) -> HTMLResponse:
        """The exact code to paste into an intranet page, filled with this server's URL."""
        base = runtime.public_base(request)
        script = f'<script src="{base}/widget.js" defer></script>'
        iframe = (
            f'<iframe src="{base}/embed/" title="KI-Rollen-Assistent" '
            'style="width:400px;height:640px;border:0"></iframe>'
        )
        allowed = ", ".join(origins) or "(none: set ASSISTANT_EMBED_ORIGINS)"
        page = (STATIC / "snippet.html").read_text(encoding="utf-8")
        page = page.replace("{{script}}", html.escape(script)).replace(
            "{{iframe}}", html.escape(iframe)
        )
        page = page.replace("{{origins}}", html.escape(allowed))
        return HTMLResponse(page)

    # Our CORS policy replaces Gradio's (which would reflect any origin): only listed origins
    # may read API responses from a browser.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST"],
        allow_headers=["content-type"],
        allow_credentials=False,
    )
    app.add_middleware(
        SecurityHeaders,
        frame_ancestors=" ".join(["'self'", *origins]),
        max_body=settings.max_request_kb * 1024,
    )
    app.router.on_startup.append(runtime.start)
    # System fonts only: the default themes would fetch web fonts from a CDN, which an
    # offline intranet cannot reach.
    theme = gr.themes.Soft(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )
    gr.mount_gradio_app(
        app,
        build_ui(runtime, compact=True),
        path="/embed",
        footer_links=[],
        css=CSS,
        theme=theme,
        enable_monitoring=False,
        ssr_mode=False,
    )
    gr.mount_gradio_app(
        app,
        build_ui(runtime),
        path="/",
        footer_links=["api"],
        css=CSS,
        theme=theme,
        enable_monitoring=False,
        ssr_mode=False,
    )
    return app
