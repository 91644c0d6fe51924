"""Error responses that say what was wrong with a request, not how the code is built.

FastAPI's validation errors echo the input back and name pydantic's error types; Gradio's routes
answer an unknown function index with a bare 500. Both are bad input, so both get a short 4xx and
one log line.
"""

from __future__ import annotations

import logging
import unicodedata

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


def printable(text: object, limit: int = 200) -> str:
    """Text from a request as it may go into a log line: control and format characters (CR, NUL,
    terminal escapes, line separators) written as escapes, so a line cannot forge another."""
    return "".join(
        repr(c)[1:-1] if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c
        for c in str(text)[:limit]
    )


def request_line(request: Request) -> str:
    """`METHOD path from peer` (the socket peer: behind a proxy, the proxy)."""
    peer = request.client.host if request.client else "?"
    return f"{request.method} {printable(request.url.path)} from {peer}"


def _where(loc: tuple) -> str:
    return ".".join(str(part) for part in loc if part != "body") or "body"


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one short line per problem: where it is and what is wrong (no input echo)."""
    problems = [
        f"{_where(tuple(e.get('loc', ())))}: {e.get('msg', 'invalid')}" for e in exc.errors()
    ]
    log.info("%s: 422 %s", request_line(request), printable("; ".join(problems), 300))
    return JSONResponse({"detail": problems[:10]}, status_code=422)


async def refused(request: Request, exc: StarletteHTTPException) -> Response:
    """Any 4xx a route raised (token, size, body, not found …): one log line, then the usual
    response; 5xx are logged where they happen."""
    if exc.status_code == 400 and exc.detail == _FASTAPI_BODY_ERROR:  # says what, not where
        exc = StarletteHTTPException(400, "the body is not valid JSON (UTF-8 text)")
    if exc.status_code < 500:
        log.info("%s: %d %s", request_line(request), exc.status_code, printable(exc.detail, 300))
    return await http_exception_handler(request, exc)


# What FastAPI answers for a body it cannot decode (bad UTF-8, broken JSON syntax).
_FASTAPI_BODY_ERROR = "There was an error parsing the body"


async def unknown_key(request: Request, exc: KeyError) -> JSONResponse:
    """Gradio looks up functions and sessions by the caller's index: a KeyError is its input."""
    log.info("%s: 404 unknown %s", request_line(request), printable(exc, 40))
    return JSONResponse({"detail": "unknown function or session"}, status_code=404)


def concise_errors(app: FastAPI, gradio: bool = False) -> None:
    """Install the handlers on our app, or (gradio=True) on a mounted Gradio app."""
    # Starlette types a handler as taking any Exception; each of these is only called with its own.
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, refused)  # type: ignore[arg-type]
    if gradio:
        app.add_exception_handler(KeyError, unknown_key)  # type: ignore[arg-type]
