"""FastAPI application: JSON API, corpus files, widget script, and the Gradio chat at / and /embed."""

from __future__ import annotations

import hmac
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import anyio.to_thread
import gradio as gr
from fastapi import FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import (
    JSONResponse,
)
from starlette.datastructures import MutableHeaders
from starlette.routing import Route

from assistant.config import Settings
from assistant.identity import (
    login_users,
)
from assistant.records.rollout import NotInStage
from assistant.web import document_routes
from assistant.web.admin import ADMIN_CSS, build_admin_ui, documents_router, upload_limit
from assistant.web.admin_api import analytics_router
from assistant.web.admin_auth import AdminGate, route_path
from assistant.web.api import api_router, not_in_stage, request_identity
from assistant.web.embed import embed_router
from assistant.web.errors import concise_errors, request_line
from assistant.web.limits import HeaderLimit
from assistant.web.login import login_router
from assistant.web.rollout_api import rollout_router
from assistant.web.runtime import RateLimited, Runtime
from assistant.web.ui import CITE_JS, CSS, HEAD, build_ui

log = logging.getLogger(__name__)


# Request headers: a browser's, with an SSO cookie and a widget token, fit several times over.
MAX_HEADER_BYTES = 32 * 1024
# A chat page's question event carries the conversation shown so far (answers as HTML).
CHAT_EVENT_BYTES = 1024 * 1024


# API descriptions and monitoring (ours and Gradio's, under / and /embed): only for signed-in users.
_INFO_PATHS = re.compile(
    r"^(/embed|/admin)?(/gradio_api)?/(info|openapi\.json|docs|redoc|monitoring)(/|$)",
    re.IGNORECASE,
)


class SecurityHeaders:
    """Who may frame our pages (CSP frame-ancestors), no MIME sniffing, and API-description
    routes closed to anonymous callers. Plain ASGI: it only adds headers to the response start,
    so the body streams through untouched (no task and stream per request)."""

    def __init__(self, app, frame_ancestors: str, signed_in) -> None:
        self.app = app
        self.frame_ancestors = frame_ancestors
        self.signed_in = signed_in

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if _INFO_PATHS.match(route_path(request)) and not self.signed_in(request):
            response = JSONResponse(
                {"detail": "sign in to read the API description"}, status_code=401
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                csp = headers.get("content-security-policy")
                ancestors = f"frame-ancestors {self.frame_ancestors}"
                headers["content-security-policy"] = f"{csp}; {ancestors}" if csp else ancestors
                headers.setdefault("x-content-type-options", "nosniff")
                headers.setdefault("referrer-policy", "same-origin")
            await send(message)

        await self.app(scope, receive, send_with_headers)


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

    concise_errors(app)

    @app.exception_handler(RateLimited)
    def rate_limited(request: Request, exc: RateLimited) -> JSONResponse:
        log.info("%s: 429 %s", request_line(request), exc)
        return JSONResponse(
            {"detail": str(exc)}, status_code=429, headers={"retry-after": str(int(exc.wait_s) + 1)}
        )

    # Outside the rollout's current stage: one line in the asker's language, no answer.
    app.add_exception_handler(NotInStage, not_in_stage)  # type: ignore[arg-type]

    app.include_router(api_router(runtime))
    app.include_router(login_router(runtime))
    app.include_router(embed_router(runtime))
    app.include_router(document_routes.documents_router(runtime))
    app.include_router(documents_router(runtime))
    app.include_router(analytics_router(runtime))
    app.include_router(rollout_router(runtime))
    _add_middleware(app, runtime)
    app.router.on_startup.append(runtime.start)
    app.router.on_startup.append(_enough_threads(settings))
    _mount_gradio(app, runtime)
    return app


def _enough_threads(settings: Settings):
    """Sync routes run in anyio's thread pool (40 threads by default). Questions waiting for the
    concurrency gate hold a thread each, so with more askers than that a rating or /healthz
    queued behind them (ratings took a second at 50 users). The pool gets room for every
    question the gate lets in or queues, plus other requests."""

    async def raise_limit() -> None:
        limiter = anyio.to_thread.current_default_thread_limiter()
        wanted = settings.max_concurrent_asks + settings.max_waiting_asks + 32
        limiter.total_tokens = max(limiter.total_tokens, wanted)

    return raise_limit


def _add_middleware(app: FastAPI, runtime: Runtime) -> None:
    """CORS, security headers, the admin gate and the header limit (the last added runs first)."""
    settings = runtime.settings
    origins = settings.embed_origins
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
            return request_identity(request, settings).user is not None
        except HTTPException:
            return False

    app.add_middleware(
        SecurityHeaders, frame_ancestors=" ".join(["'self'", *origins]), signed_in=signed_in
    )
    # Outermost: nothing of the admin app runs for anybody but an admin.
    app.add_middleware(AdminGate, settings=settings, sessions=runtime.admin_sessions)
    app.add_middleware(HeaderLimit, limit=MAX_HEADER_BYTES)


UPLOAD_ROUTE = "/gradio_api/upload"
PROJECT = Path(__file__).resolve().parents[2]


def _blocked_paths(settings: Settings) -> list[str]:
    """Gradio serves and copies files under the working folder and the temp dir: none of the
    documents, the data (stores, app database) or the project (code, .env) is one to hand out
    (its own cache, in the temp dir unless GRADIO_TEMP_DIR says otherwise, stays open)."""
    cache = Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")
    inside = cache.resolve().is_relative_to(PROJECT)
    data = [str(Path(p).resolve()) for p in (settings.corpus_dir, settings.data_dir)]
    return [*data, *([] if inside else [str(PROJECT)])]


async def _no_uploads(request: Request) -> JSONResponse:
    log.info("%s: 404 no uploads on the chat pages", request_line(request))
    return JSONResponse({"detail": "this page takes no files"}, status_code=404)


def _mount_gradio(app: FastAPI, runtime: Runtime) -> None:
    """The admin page at /admin, the widget's chat at /embed and the chat page at /."""
    settings, blocked = runtime.settings, _blocked_paths(runtime.settings)
    # System fonts only: the default themes would fetch web fonts from a CDN, which an
    # offline intranet cannot reach.
    theme = gr.themes.Soft(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )

    def mount(blocks: gr.Blocks, path: str, max_body_size: int, uploads=False, **options) -> None:
        gr.mount_gradio_app(
            app,
            blocks,
            path=path,
            footer_links=[],
            theme=theme,
            blocked_paths=blocked,
            enable_monitoring=False,
            ssr_mode=False,
            # An unexpected error reaches the browser as "Error", not as Python's or pydantic's
            # text (which names our classes and echoes the input); the log has the details.
            show_error=False,
            **options,
        )
        # The mounted Gradio app is a FastAPI app: its own limit replaces ours for its paths.
        mounted: Any = next(
            r for r in reversed(app.routes) if getattr(r, "path", None) == path.rstrip("/")
        )
        mounted.app.max_body_size = max_body_size
        # Gradio checks the paths of files going in (uploaded by a user) and out (not in
        # blocked_paths) only for an app it launched itself; a mounted one never says so.
        blocks.has_launched = True
        concise_errors(mounted.app, gradio=True)
        if not uploads:
            # Gradio takes files on every app; the chat pages have no file field, so the route
            # only let anyone store files in its cache and have them served back.
            mounted.app.router.routes.insert(0, Route(UPLOAD_ROUTE, _no_uploads, methods=["POST"]))

    mount(build_admin_ui(runtime), "/admin", upload_limit(settings), True, css=CSS + ADMIN_CSS)
    # The chat page sends the conversation shown so far with every question.
    mount(
        build_ui(runtime, compact=True), "/embed", CHAT_EVENT_BYTES, css=CSS, js=CITE_JS, head=HEAD
    )
    users = login_users(settings)
    mount(
        build_ui(runtime),
        "/",
        CHAT_EVENT_BYTES,
        css=CSS,
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
