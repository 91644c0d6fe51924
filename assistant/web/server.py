"""FastAPI application: JSON API, corpus files, widget script, and the Gradio chat at / and /embed."""

from __future__ import annotations

import hmac
import html
import logging
import re
import threading
import time
import unicodedata
from pathlib import Path
from typing import Literal

import gradio as gr
from fastapi import FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from pydantic import BaseModel, Field
from starlette.middleware.base import BaseHTTPMiddleware

from assistant.answer import Answer
from assistant.audit import AuditLog
from assistant.config import Settings
from assistant.documents import find_corpus_file
from assistant.embeddings import EmbeddingError
from assistant.feedback import FeedbackError, FeedbackStore
from assistant.identity import (
    ANONYMOUS,
    Identity,
    IdentityError,
    LinkSigner,
    login_users,
    resolve,
    verify_token,
)
from assistant.index import IngestBusyError, IngestReport, KnowledgeBase, is_upload
from assistant.pipeline import Assistant, QuestionError, build_assistant, build_knowledge_base
from assistant.retention import RetentionJob
from assistant.uploads import DocumentAdmin
from assistant.web import admin_auth
from assistant.web.admin import build_admin_ui, documents_router
from assistant.web.admin_analytics import analytics_router
from assistant.web.admin_auth import AdminGate, AdminSessions, root_path, route_path
from assistant.web.limits import BusyError, Gate, RateLimiter
from assistant.web.ui import CSS, build_ui

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")


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
        self.retention = RetentionJob(
            self.audit, self.feedback.engine, settings.audit_retention_days
        )
        self.links = LinkSigner(settings)
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        self.gate = Gate(settings.max_concurrent_asks, settings.max_waiting_asks)
        self.admin_sessions = AdminSessions(self.links.key)
        self.documents: DocumentAdmin | None = None

    def start(self) -> None:
        """Open the store and bring it in line with the corpus, in the background."""
        threading.Thread(target=self._load, name="startup-ingest", daemon=True).start()
        self.retention.start()

    def _load(self) -> None:
        try:
            self.kb = build_knowledge_base(self.settings)
            try:
                report = self.kb.ingest(self.settings.corpus_dir)
            except IngestBusyError as exc:
                # Another replica (or ingest.py) is writing the shared store: serve what is
                # stored; its changes show up here through the corpus version marker.
                log.info("startup ingest skipped: %s", exc)
                report = IngestReport()
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
            self.documents = DocumentAdmin(self.settings, self.kb)
            self.assistant = build_assistant(self.settings, self.kb)
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

    def admit(self, who: Identity, address: str | None) -> None:
        """Rate limit per user (per address when anonymous): HTTPException 429 when exceeded."""
        key = who.user or f"ip:{address or 'unknown'}"
        wait = self.limiter.retry_after(key)
        if wait:
            raise HTTPException(
                429,
                detail=f"too many questions: at most {self.settings.rate_limit_per_minute} per "
                f"minute; try again in {wait:.0f} s",
                headers={"retry-after": str(int(wait) + 1)},
            )

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
        return self.documents

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


class FeedbackRequest(BaseModel):
    question: str = Field(..., max_length=4000)
    answer: str = Field(..., max_length=20_000)
    citations: list[dict] = Field(default_factory=list, max_length=20)
    answered: bool = True
    mode: str = Field("extractive", max_length=32)
    rating: Literal[1, -1] = Field(..., description="+1 thumbs up, -1 thumbs down")
    comment: str = Field("", max_length=2000)


# API descriptions and monitoring (ours and Gradio's, under / and /embed): only for signed-in users.
_INFO_PATHS = re.compile(
    r"^(/embed|/admin)?(/gradio_api)?/(info|openapi\.json|docs|redoc|monitoring)(/|$)",
    re.IGNORECASE,
)


class SecurityHeaders(BaseHTTPMiddleware):
    """Who may frame our pages (CSP frame-ancestors), no MIME sniffing, a body size limit, and
    API-description routes closed to anonymous callers."""

    def __init__(
        self, app, frame_ancestors: str, max_body: int, signed_in, max_upload: int
    ) -> None:
        super().__init__(app)
        self.frame_ancestors = frame_ancestors
        self.max_body = max_body
        self.signed_in = signed_in
        # Admins upload documents (AdminGate has let only admins this far on these paths).
        self.max_upload = max_upload

    async def dispatch(self, request: Request, call_next):
        path = route_path(request)
        if _INFO_PATHS.match(path) and not self.signed_in(request):
            return JSONResponse({"detail": "sign in to read the API description"}, status_code=401)
        length = request.headers.get("content-length")
        limit = self.max_body
        if path.lower().startswith(("/admin/", "/api/admin/")):
            limit = self.max_upload
        if length and length.isdigit() and int(length) > limit:
            return JSONResponse(
                {"detail": f"request body too large ({length} bytes, at most {limit})"},
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
        """200 once the index is loaded and answering, 503 before (with the reason). "degraded"
        with `ingest_error`: answering from the stored corpus, which the last ingest could not
        update."""
        if not runtime.ready.is_set():
            raise HTTPException(503, detail=runtime.error or "loading")
        health = {
            "status": "degraded" if runtime.ingest_error else "ok",
            "chunks": runtime.kb.count(),
            "corpus_version": runtime.kb.version(),
        }
        if runtime.ingest_error:
            health["ingest_error"] = runtime.ingest_error
        return health

    def identity(request: Request) -> Identity:
        try:
            return resolve(
                request.headers, request.client.host if request.client else None, settings
            )
        except IdentityError as exc:
            raise HTTPException(401, detail=str(exc)) from exc

    @app.post("/api/ask", tags=["chat"])
    def ask(body: AskRequest, request: Request) -> dict:
        """Answer a question with cited passages (same JSON as `python -m assistant ask --json`).

        Who asks decides which documents are searched: `Authorization: Bearer <token>` (the
        intranet's JWT) or the SSO proxy's headers; without either, documents for `all` only."""
        who = identity(request)
        runtime.admit(who, request.client.host if request.client else None)
        assistant = runtime.get()
        started = time.monotonic()
        try:
            with runtime.gate:
                answer = assistant.ask(body.question, body.history, who.groups)
        except QuestionError as exc:
            raise HTTPException(422, detail=str(exc)) from exc
        except BusyError as exc:
            raise HTTPException(503, detail=str(exc), headers={"retry-after": "5"}) from exc
        except EmbeddingError as exc:
            log.error("question not answered: %s", exc)
            raise HTTPException(503, detail=str(exc), headers={"retry-after": "30"}) from exc
        runtime.answered(who, answer, "api", round((time.monotonic() - started) * 1000))
        return answer.as_dict()

    @app.post("/api/feedback", tags=["chat"])
    def feedback(body: FeedbackRequest, request: Request) -> dict:
        """Rate an answer (the JSON /api/ask returned): +1 or -1, with an optional comment."""
        identity(request)  # a presented token must be valid
        answer = {
            "question": body.question,
            "answer": body.answer,
            "citations": body.citations,
            "answered": body.answered,
            "mode": body.mode,
        }
        try:
            return {"id": runtime.feedback.add(answer, body.rating, body.comment)}
        except FeedbackError as exc:
            log.error("%s", exc)
            raise HTTPException(503, detail=str(exc)) from exc

    @app.get("/files/{source:path}", tags=["documents"], include_in_schema=False)
    def corpus_file(
        source: str, request: Request, exp: str | None = None, sig: str | None = None
    ) -> Response:
        """A corpus document, read-only; only files that are part of the corpus, and only for
        readers in its audience (or with a signed link from an answer shown to one)."""
        # Sources are stored and cited in Unicode NFC, whatever form the name has on disk.
        source = unicodedata.normalize("NFC", source)
        if is_upload(source):
            try:
                path = runtime.documents_admin().file_path(source)
            except KeyError as exc:
                raise HTTPException(404, detail="no such document") from exc
        else:
            path = find_corpus_file(settings.corpus_dir, source)
            if path is None:
                raise HTTPException(404, detail="no such document")
        assistant = runtime.get()
        if not runtime.links.check(source, exp, sig):
            try:
                who = resolve(
                    request.headers, request.client.host if request.client else None, settings
                )
            except IdentityError:
                who = ANONYMOUS
            if not assistant.retriever.readable(source, who.groups):
                # The same answer as for a missing file: a restricted document's existence is
                # not revealed either.
                raise HTTPException(404, detail="no such document")
        headers = {"cache-control": "no-store"}
        if path.suffix.lower() in (".html", ".htm"):
            # A document's own HTML must not run in our origin.
            headers["content-security-policy"] = (
                "sandbox; default-src 'none'; style-src 'unsafe-inline'"
            )
        media = {".md": "text/plain; charset=utf-8", ".txt": "text/plain; charset=utf-8"}
        return FileResponse(path, media_type=media.get(path.suffix.lower()), headers=headers)

    app.include_router(documents_router(runtime))
    app.include_router(analytics_router(runtime))

    @app.get(admin_auth.LOGIN_PATH, include_in_schema=False)
    def admin_login_page(request: Request, token: str | None = None, next: str = "/admin/"):
        """The admin sign-in: `?token=<intranet JWT>` signs in at once, else a login form."""
        if not token:
            return HTMLResponse(
                admin_auth.login_page(next_path=admin_auth.safe_next(next), root=root_path(request))
            )
        try:
            who = verify_token(token, settings)
        except IdentityError as exc:
            return HTMLResponse(
                admin_auth.login_page(str(exc), root=root_path(request)),
                status_code=401,
            )
        return _admin_session(who, request, next)

    @app.post(admin_auth.LOGIN_PATH, include_in_schema=False)
    async def admin_login(request: Request):
        form = await request.form()
        user, password = str(form.get("username", "")), str(form.get("password", ""))
        users = login_users(settings)
        if not (user in users and hmac.compare_digest(users[user][0].encode(), password.encode())):
            return HTMLResponse(
                admin_auth.login_page("Benutzer oder Passwort falsch.", root=root_path(request)),
                status_code=401,
            )
        who = Identity(user, users[user][1], "login")
        return _admin_session(who, request, str(form.get("next", "/admin/")))

    def _admin_session(who: Identity, request: Request, next_path: str) -> Response:
        if settings.admin_group not in who.groups:
            return HTMLResponse(
                admin_auth.denied_page(
                    f"{who.user} ist nicht in der Gruppe '{settings.admin_group}'",
                    root_path(request),
                ),
                status_code=403,
            )
        response = RedirectResponse(
            root_path(request) + admin_auth.safe_next(next_path), status_code=303
        )
        secure = runtime.public_base(request).startswith("https://")
        admin_auth.set_session(response, runtime.admin_sessions, who, secure)
        return response

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

    def signed_in(request: Request) -> bool:
        try:
            return identity(request).user is not None
        except HTTPException:
            return False

    app.add_middleware(
        SecurityHeaders,
        frame_ancestors=" ".join(["'self'", *origins]),
        max_body=settings.max_request_kb * 1024,
        signed_in=signed_in,
        # several files of the largest size per request, plus form overhead
        max_upload=int(settings.max_file_mb * 1_000_000) * 10 + 1_000_000,
    )
    # Outermost: nothing of the admin app runs for anybody but an admin.
    app.add_middleware(AdminGate, settings=settings, sessions=runtime.admin_sessions)
    app.router.on_startup.append(runtime.start)
    # System fonts only: the default themes would fetch web fonts from a CDN, which an
    # offline intranet cannot reach.
    theme = gr.themes.Soft(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )

    def mount(blocks: gr.Blocks, path: str, **options) -> None:
        gr.mount_gradio_app(
            app,
            blocks,
            path=path,
            footer_links=[],
            css=CSS,
            theme=theme,
            enable_monitoring=False,
            ssr_mode=False,
            **options,
        )

    mount(build_admin_ui(runtime), "/admin")
    mount(build_ui(runtime, compact=True), "/embed")
    users = login_users(settings)
    mount(
        build_ui(runtime),
        "/",
        # Small setups without SSO: a login page with the configured users.
        auth=(
            lambda user, password: (
                user in users and hmac.compare_digest(users[user][0].encode(), password.encode())
            )
        )
        if users
        else None,
    )
    return app
