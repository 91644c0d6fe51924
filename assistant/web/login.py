"""The admin sign-in at /admin/login: with the intranet's token, or a login form for the users
configured in ASSISTANT_LOGIN_USERS; a signed session cookie for admins."""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, Request
from fastapi.responses import (
    HTMLResponse,
    RedirectResponse,
    Response,
)

from assistant.identity import (
    Identity,
    IdentityError,
    login_users,
    verify_token,
)
from assistant.web import admin_auth
from assistant.web.admin_auth import root_path
from assistant.web.errors import printable, request_line
from assistant.web.runtime import Runtime

log = logging.getLogger(__name__)


def login_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    settings = runtime.settings

    @router.get(admin_auth.LOGIN_PATH, include_in_schema=False)
    def admin_login_page(request: Request, token: str | None = None, next: str = "/admin/"):
        """The admin sign-in: `?token=<intranet JWT>` signs in at once, else a login form."""
        if not token:
            return HTMLResponse(
                admin_auth.login_page(next_path=admin_auth.safe_next(next), root=root_path(request))
            )
        try:
            who = verify_token(token, settings)
        except IdentityError as exc:
            log.info("%s: 401 admin sign-in refused: %s", request_line(request), exc)
            return HTMLResponse(
                admin_auth.login_page(str(exc), root=root_path(request)),
                status_code=401,
            )
        return _admin_session(who, request, next)

    @router.post(admin_auth.LOGIN_PATH, include_in_schema=False)
    async def admin_login(request: Request):
        form = await request.form()
        user, password = str(form.get("username", "")), str(form.get("password", ""))
        users = login_users(settings)
        if not (user in users and hmac.compare_digest(users[user][0].encode(), password.encode())):
            log.info("%s: 401 admin sign-in refused for %s", request_line(request), printable(user))
            return HTMLResponse(
                admin_auth.login_page("Benutzer oder Passwort falsch.", root=root_path(request)),
                status_code=401,
            )
        who = Identity(user, users[user][1], "login")
        return _admin_session(who, request, str(form.get("next", "/admin/")))

    def _admin_session(who: Identity, request: Request, next_path: str) -> Response:
        if settings.admin_group not in who.groups:
            log.info(
                "%s: 403 %s is not in %s",
                request_line(request),
                printable(who.user),
                settings.admin_group,
            )
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

    return router
