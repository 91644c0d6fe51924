"""FastAPI application: JSON API, corpus files, widget script, and the Gradio chat at / and /embed."""

from __future__ import annotations

import hmac
import html
import logging
import re
from pathlib import Path
from typing import Literal

import gradio as gr
from fastapi import FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from pydantic import BaseModel, Field
from starlette.middleware.base import BaseHTTPMiddleware

from assistant.config import Settings
from assistant.embeddings import EmbeddingError
from assistant.feedback import FeedbackError
from assistant.identity import (
    Identity,
    IdentityError,
    login_users,
    resolve,
    verify_token,
)
from assistant.pipeline import QuestionError
from assistant.web import admin_auth, document_routes
from assistant.web.admin import ADMIN_CSS, build_admin_ui, documents_router, upload_limit
from assistant.web.admin_analytics import analytics_router
from assistant.web.admin_auth import AdminGate, root_path, route_path
from assistant.web.errors import concise_errors
from assistant.web.limits import BusyError, HeaderLimit
from assistant.web.runtime import RateLimited, Runtime
from assistant.web.ui import CITE_JS, CSS, HEAD, build_ui

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")


# Request headers: a browser's, with an SSO cookie and a widget token, fit several times over.
MAX_HEADER_BYTES = 32 * 1024
# A chat page's question event carries the conversation shown so far (answers as HTML).
CHAT_EVENT_BYTES = 1024 * 1024
# A rating carries the answer it rates (text and citations, as /api/ask returned it): a few KB.
FEEDBACK_BODY_BYTES = 32 * 1024


class AskRequest(BaseModel):
    question: str = Field(..., description="The employee's question, German or English.")
    history: list[dict] = Field(
        default_factory=list,
        max_length=50,
        description='Earlier turns, oldest first: [{"role": "user", "content": "..."}, ...]; '
        "used to complete follow-up questions.",
    )


class FeedbackRequest(BaseModel):
    # The whole body is held to FEEDBACK_BODY_BYTES as well (the citations are free-form).
    question: str = Field(..., max_length=4000)
    answer: str = Field(..., max_length=12_000)
    citations: list[dict] = Field(default_factory=list, max_length=12)
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
    """Who may frame our pages (CSP frame-ancestors), no MIME sniffing, and API-description
    routes closed to anonymous callers."""

    def __init__(self, app, frame_ancestors: str, signed_in) -> None:
        super().__init__(app)
        self.frame_ancestors = frame_ancestors
        self.signed_in = signed_in

    async def dispatch(self, request: Request, call_next):
        if _INFO_PATHS.match(route_path(request)) and not self.signed_in(request):
            return JSONResponse({"detail": "sign in to read the API description"}, status_code=401)
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
        # Every body is counted as it is read (chunked ones too): 413 past the limit. Routes
        # that take more (admin uploads, the chat pages' event calls) say so themselves.
        max_body_size=settings.max_request_kb * 1024,
        title="KI-Rollen-Assistent",
        version="0.1.0",
        description="Cited answers about AI roles and the company's AI policies.",
    )
    app.state.runtime = runtime
    origins = settings.embed_origin_list

    concise_errors(app)

    @app.exception_handler(RateLimited)
    def rate_limited(request: Request, exc: RateLimited) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc)}, status_code=429, headers={"retry-after": str(int(exc.wait_s) + 1)}
        )

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
        try:
            answer = runtime.ask(who, runtime.address(request), body.question, body.history, "api")
        except QuestionError as exc:
            raise HTTPException(422, detail=str(exc)) from exc
        except BusyError as exc:
            raise HTTPException(503, detail=str(exc), headers={"retry-after": "5"}) from exc
        except EmbeddingError as exc:
            log.error("question not answered: %s", exc)
            raise HTTPException(503, detail=str(exc), headers={"retry-after": "30"}) from exc
        return answer.as_dict()

    @app.post("/api/feedback", tags=["chat"], max_body_size=FEEDBACK_BODY_BYTES)
    def feedback(body: FeedbackRequest, request: Request) -> dict:
        """Rate an answer (the JSON /api/ask returned): +1 or -1, with an optional comment."""
        who = identity(request)  # a presented token must be valid
        runtime.admit(who, runtime.address(request), runtime.feedback_limiter)
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

    app.include_router(document_routes.documents_router(runtime))
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

    @app.get("/api/embed-check", tags=["ops"])
    def embed_check() -> dict:
        """For the widget loader: a page of an allowed origin can read this (CORS), any other
        page cannot, and the loader then says the assistant is not enabled there."""
        return {"allowed": True}

    @app.get("/embed/snippet", include_in_schema=False)
    def snippet(request: Request) -> HTMLResponse:
        """The exact code to paste into an intranet page, filled with this server's URL."""
        base = runtime.public_base(request)
        script = f'<script src="{base}/widget.js" defer></script>'
        signed = f'<script src="{base}/widget.js" data-token="<JWT des Intranets>" defer></script>'
        iframe = (
            f'<iframe src="{base}/embed/" title="KI-Rollen-Assistent" '
            'style="width:380px;height:600px;border:0"></iframe>'
        )
        allowed = ", ".join(origins) or "(none: set ASSISTANT_EMBED_ORIGINS)"
        page = (STATIC / "snippet.html").read_text(encoding="utf-8")
        for name, code in (("script", script), ("signed", signed), ("iframe", iframe)):
            page = page.replace("{{" + name + "}}", html.escape(code))
        page = page.replace("{{origins}}", html.escape(allowed))
        return HTMLResponse(page)

    # Our CORS policy replaces Gradio's (which would reflect any origin): only listed origins
    # may read API responses from a browser.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST"],
        # API callers on an allowed page sign in with `Authorization: Bearer <JWT>`.
        allow_headers=["content-type", "authorization"],
        allow_credentials=False,
    )

    def signed_in(request: Request) -> bool:
        try:
            return identity(request).user is not None
        except HTTPException:
            return False

    app.add_middleware(
        SecurityHeaders, frame_ancestors=" ".join(["'self'", *origins]), signed_in=signed_in
    )
    # Outermost: nothing of the admin app runs for anybody but an admin.
    app.add_middleware(AdminGate, settings=settings, sessions=runtime.admin_sessions)
    app.add_middleware(HeaderLimit, limit=MAX_HEADER_BYTES)
    app.router.on_startup.append(runtime.start)
    # System fonts only: the default themes would fetch web fonts from a CDN, which an
    # offline intranet cannot reach.
    theme = gr.themes.Soft(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )

    def mount(blocks: gr.Blocks, path: str, max_body_size: int, css: str = CSS, **options) -> None:
        gr.mount_gradio_app(
            app,
            blocks,
            path=path,
            footer_links=[],
            css=css,
            theme=theme,
            enable_monitoring=False,
            ssr_mode=False,
            # An unexpected error reaches the browser as "Error", not as Python's or pydantic's
            # text (which names our classes and echoes the input); the log has the details.
            show_error=False,
            **options,
        )
        # The mounted Gradio app is a FastAPI app: its own limit replaces ours for its paths.
        mounted = next(
            r for r in reversed(app.routes) if getattr(r, "path", None) == path.rstrip("/")
        )
        mounted.app.max_body_size = max_body_size
        concise_errors(mounted.app, gradio=True)

    mount(build_admin_ui(runtime), "/admin", upload_limit(settings), css=CSS + ADMIN_CSS)
    # The chat page sends the conversation shown so far with every question.
    mount(build_ui(runtime, compact=True), "/embed", CHAT_EVENT_BYTES, js=CITE_JS, head=HEAD)
    users = login_users(settings)
    mount(
        build_ui(runtime),
        "/",
        CHAT_EVENT_BYTES,
        js=CITE_JS,
        head=HEAD,
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
