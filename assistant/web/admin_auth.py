"""Who may use the admin pages: members of the admin group, however they signed in.

The admin page is a normal browser page (not the intranet widget), so it needs an identity on
every request, including Gradio's uploads and event calls:

- behind the SSO proxy: the proxy's headers (from a trusted address) on every request;
- API scripts: `Authorization: Bearer <JWT>`;
- otherwise `/admin/login` turns a widget token (`?token=`) or a configured login user into a
  signed, HttpOnly session cookie (8 hours).

`AdminGate` checks this for every path under `/admin` and `/api/admin` before anything else runs:
401 for nobody (a browser is sent to the login page), 403 for a signed-in non-admin.
"""

from __future__ import annotations

import hashlib
import html
import logging
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.middleware.base import BaseHTTPMiddleware

from assistant.audience import reader_groups
from assistant.config import Settings
from assistant.identity import ANONYMOUS, Identity, IdentityError, resolve
from assistant.web.errors import printable

log = logging.getLogger(__name__)

COOKIE = "kra_admin"
SESSION_S = 8 * 3600
LOGIN_PATH = "/admin/login"


class AdminDenied(Exception):
    """Not allowed on the admin pages; `status` is 401 (nobody signed in) or 403 (not an admin)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class AdminSessions:
    """Signed admin session cookies (itsdangerous: user, groups and the time of issue, signed
    with the session key and a salt of their own; nothing stored server-side, so every replica
    with the same session secret accepts them)."""

    SALT = "admin-session"

    def __init__(self, key: bytes, ttl_s: int = SESSION_S) -> None:
        self.ttl_s = ttl_s
        self._serializer = URLSafeTimedSerializer(
            key, salt=self.SALT, signer_kwargs={"digest_method": hashlib.sha256}
        )

    def issue(self, who: Identity) -> str:
        return self._serializer.dumps({"u": who.user, "g": sorted(who.groups), "v": who.via})

    def read(self, cookie: str | None) -> Identity | None:
        """The identity in a cookie this app issued less than `ttl_s` ago; None for anything
        else (forged, tampered with, expired, or of the format before itsdangerous)."""
        if not cookie:
            return None
        try:
            payload = self._serializer.loads(cookie, max_age=self.ttl_s)
        except BadData:
            return None
        if not isinstance(payload, dict) or not payload.get("u"):
            return None
        return Identity(
            str(payload["u"]), reader_groups(payload.get("g", [])), payload.get("v", "")
        )


def request_identity(request, settings: Settings, sessions: AdminSessions) -> Identity:
    """The identity behind an admin request (FastAPI or Gradio request): bearer token or SSO
    proxy first, then the admin session cookie; IdentityError for a presented, invalid token."""
    client = request.client.host if getattr(request, "client", None) else None
    who = resolve(request.headers, client, settings)
    if who.user:
        return who
    cookies = getattr(request, "cookies", None) or {}
    return sessions.read(cookies.get(COOKIE)) or ANONYMOUS


def require_admin(request, settings: Settings, sessions: AdminSessions) -> Identity:
    """The admin behind the request; AdminDenied (401/403) for anybody else."""
    try:
        who = request_identity(request, settings, sessions)
    except IdentityError as exc:
        raise AdminDenied(401, str(exc)) from exc
    if not who.user:
        raise AdminDenied(401, "sign in to use the admin pages")
    if settings.admin_group not in who.groups:
        raise AdminDenied(
            403,
            f"the admin pages are only for the group '{settings.admin_group}'; "
            f"{who.user} is not in it",
        )
    return who


def root_path(request: Request) -> str:
    """The path prefix a reverse proxy serves the app under ("" at the root)."""
    return request.scope.get("root_path", "")


def route_path(request: Request) -> str:
    """The path the app routes on: without the root path a reverse proxy's prefix adds (uvicorn
    puts the root path in front of the request path; Starlette's router strips it again)."""
    path: str = request.scope["path"]
    root = root_path(request)
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) :] or "/"
    return path


def _is_admin_path(path: str) -> bool:
    lowered = path.lower()
    return (
        lowered == "/admin"
        or lowered.startswith("/admin/")
        or lowered == "/api/admin"
        or lowered.startswith("/api/admin/")
    ) and lowered != LOGIN_PATH  # only the login route itself: "/admin/login/" is the admin app's


class AdminGate(BaseHTTPMiddleware):
    """Admin paths answer only to admins; nothing of the admin app runs for anybody else."""

    def __init__(self, app, settings: Settings, sessions: AdminSessions) -> None:
        super().__init__(app)
        self.settings = settings
        self.sessions = sessions

    async def __call__(self, scope, receive, send) -> None:
        # Every other request passes straight through: BaseHTTPMiddleware's task and streams
        # per request were a noticeable share of an API answer's CPU time under load.
        if scope["type"] != "http" or not _is_admin_path(route_path(Request(scope))):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def dispatch(self, request: Request, call_next):
        path = route_path(request)
        if not _is_admin_path(path):
            return await call_next(request)
        try:
            require_admin(request, self.settings, self.sessions)
            reason = cross_site(request, self.settings)
            if reason:
                raise AdminDenied(403, f"refused: {reason}")
        except AdminDenied as exc:
            log.warning(
                "admin %s %s refused: %d %s",
                request.method,
                printable(path),
                exc.status,
                printable(exc),
            )
            wants_page = request.method == "GET" and "text/html" in request.headers.get(
                "accept", ""
            )
            if wants_page and exc.status == 401:
                return RedirectResponse(f"{root_path(request)}{LOGIN_PATH}?next={quote(path)}", 303)
            if wants_page:
                return HTMLResponse(
                    denied_page(str(exc), root_path(request)), status_code=exc.status
                )
            return JSONResponse({"detail": str(exc)}, status_code=exc.status)
        return await call_next(request)


_CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def cross_site(request: Request, settings: Settings) -> str:
    """Why a state-changing admin request may have been sent by another page ("" if not).

    A browser adds the admin's session cookie (or the SSO proxy its headers) to a request any page
    makes it send. SameSite does not help when the app lives under a path of the intranet's own
    host (the README's deployment): there the intranet's pages are the same site. So a change
    must come from one of our admin pages: Origin, when sent, is this app's; Referer (our pages
    send it, `referrer-policy: same-origin`) is an admin page under our root path. A request
    signed in with a bearer token is a script's: a browser never adds that header by itself.
    """
    if request.method not in _CHANGES:
        return ""
    if (request.headers.get("authorization") or "").lower().startswith("bearer "):
        return ""
    own = {urlsplit(settings.public_url).netloc.lower()} if settings.public_url else set()
    own.add((request.headers.get("host") or "").lower())
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc.lower() not in own:
        return f"Origin {origin[:100]} is not this app"
    referer = urlsplit(request.headers.get("referer") or "")
    if not referer.netloc:
        return "no Referer; admin changes are only accepted from the admin pages"
    admin_root = root_path(request) + "/admin"
    if referer.netloc.lower() not in own or not (
        referer.path == admin_root or referer.path.startswith(admin_root + "/")
    ):
        return "the request does not come from an admin page of this app"
    return ""


def set_session(response: Response, sessions: AdminSessions, who: Identity, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        sessions.issue(who),
        max_age=sessions.ttl_s,
        httponly=True,
        secure=secure,
        samesite="strict",
        path="/",
    )


_PAGE = """<!doctype html><html lang="de"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>KI-Rollen-Assistent · Verwaltung</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}}
label{{display:block;margin:.8rem 0 .2rem}}input{{width:100%;padding:.4rem;font-size:1rem}}
button{{margin-top:1rem;padding:.5rem 1.2rem;font-size:1rem}}.error{{color:#b00020}}</style>
</head><body><h1>Verwaltung</h1>{body}</body></html>"""


def login_page(error: str = "", next_path: str = "/admin/", root: str = "") -> str:
    message = f'<p class="error" id="login-error">{html.escape(error)}</p>' if error else ""
    return _PAGE.format(
        body=f"""<p>Anmeldung für die Gruppe <em>admin</em> (Personal / KI-Governance).</p>{message}
<form method="post" action="{html.escape(root)}{LOGIN_PATH}">
<input type="hidden" name="next" value="{html.escape(next_path)}">
<label for="username">Benutzer</label><input id="username" name="username" autocomplete="username">
<label for="password">Passwort</label>
<input id="password" name="password" type="password" autocomplete="current-password">
<button type="submit" id="login">Anmelden</button></form>"""
    )


def denied_page(reason: str, root: str = "") -> str:
    root = html.escape(root)
    return _PAGE.format(
        body=f'<p class="error" id="denied">Kein Zugriff: {html.escape(reason)}</p>'
        f'<p><a href="{root}{LOGIN_PATH}">Mit einem anderen Konto anmelden</a> · '
        f'<a href="{root}/">Zum Chat</a></p>'
    )


def safe_next(path: str | None) -> str:
    """Only a local admin path may be the target after login (no open redirect)."""
    if path and path.startswith("/admin") and not path.startswith("//") and "\\" not in path:
        return path
    return "/admin/"
