"""Error responses that say what was wrong with a request, not how the code is built.

FastAPI's validation errors echo the input back and name pydantic's error types; Gradio's routes
answer an unknown function index with a bare 500. Both are bad input, so both get a short 4xx and
one log line.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)


def _where(loc: tuple) -> str:
    return ".".join(str(part) for part in loc if part != "body") or "body"


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one short line per problem: where it is and what is wrong (no input echo)."""
    problems = [
        f"{_where(tuple(e.get('loc', ())))}: {e.get('msg', 'invalid')}" for e in exc.errors()
    ]
    log.info("%s %s: 422 %s", request.method, request.url.path[:200], "; ".join(problems)[:300])
    return JSONResponse({"detail": problems[:10]}, status_code=422)


async def unknown_key(request: Request, exc: KeyError) -> JSONResponse:
    """Gradio looks up functions and sessions by the caller's index: a KeyError is its input."""
    log.info("%s %s: 404 unknown %s", request.method, request.url.path[:200], str(exc)[:40])
    return JSONResponse({"detail": "unknown function or session"}, status_code=404)


def concise_errors(app: FastAPI, gradio: bool = False) -> None:
    """Install the handlers on our app, or (gradio=True) on a mounted Gradio app."""
    # Starlette types a handler as taking any Exception; each of these is only called with its own.
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    if gradio:
        app.add_exception_handler(KeyError, unknown_key)  # type: ignore[arg-type]
