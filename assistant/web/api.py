"""The JSON API: /healthz, POST /api/ask, POST /api/feedback, /api/embed-check."""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from assistant.answering.pipeline import QuestionError
from assistant.config import Settings
from assistant.identity import (
    Identity,
    IdentityError,
    resolve,
)
from assistant.records.feedback import FeedbackError
from assistant.records.rollout import NotInStage
from assistant.store.embeddings import EmbeddingError
from assistant.web.limits import BusyError
from assistant.web.runtime import Runtime
from assistant.web.texts import stage_line

log = logging.getLogger(__name__)

# A rating carries the answer it rates (text and citations, as /api/ask returned it): a few KB.
FEEDBACK_BODY_BYTES = 32 * 1024


class Turn(BaseModel):
    """One earlier message of the conversation."""

    role: Literal["user", "assistant"]
    content: str = Field(..., max_length=20_000)


class AskRequest(BaseModel):
    question: str = Field(..., description="The employee's question, German or English.")
    history: list[Turn] = Field(
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
    receipt: str = Field(
        ...,
        max_length=200,
        description="The answer's receipt, as /api/ask returned it: a rating rates an answer "
        "the assistant gave (question, answer, citations unchanged); rating it again replaces "
        "the first rating.",
    )


def json_body(request: Request) -> None:
    """415 for a body that is not declared JSON (FastAPI would say 'Input should be a valid
    dictionary', which does not name the problem)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        raise HTTPException(
            415, detail=f"send the body as JSON (Content-Type: application/json), not {kind!r}"
        )


def not_in_stage(request: Request, exc: NotInStage) -> JSONResponse:
    """403 with the "not yet" line in the caller's language (the app's handler of NotInStage)."""
    day = exc.available_from
    return JSONResponse(
        {
            "detail": stage_line(_language(request), day),
            "available_from": day.isoformat() if day else None,
        },
        status_code=403,
    )


def _language(request: Request) -> str:
    """'en' if the caller prefers English over German, else 'de'."""
    for part in request.headers.get("accept-language", "").lower().split(","):
        code = part.split(";")[0].strip()[:2]
        if code in ("de", "en"):
            return code
    return "de"


def request_identity(request: Request, settings: Settings) -> Identity:
    """Who sent a request (token, SSO proxy from a trusted peer, or anonymous); 401 for a
    presented token that is not valid."""
    try:
        return resolve(request.headers, request.client.host if request.client else None, settings)
    except IdentityError as exc:
        raise HTTPException(401, detail=str(exc)) from exc


# Long: a router: each route is a short function of its own, sharing the runtime.
def api_router(runtime: Runtime) -> APIRouter:
    router = APIRouter()
    settings = runtime.settings

    def identity(request: Request) -> Identity:
        return request_identity(request, settings)

    @router.get("/healthz", tags=["ops"])
    def healthz() -> dict:
        """200 once the index is loaded and answering, 503 before (with the reason). "degraded"
        with `ingest_error`: answering from the stored corpus, which the last ingest could not
        update."""
        if not runtime.ready.is_set():
            raise HTTPException(503, detail=runtime.error or "loading")
        health = {
            "status": "degraded" if runtime.ingest_error else "ok",
            "chunks": runtime.knowledge_base().count(),
            "corpus_version": runtime.knowledge_base().version(),
        }
        if runtime.ingest_error:
            health["ingest_error"] = runtime.ingest_error
        return health

    @router.post(
        "/api/ask",
        tags=["chat"],
        dependencies=[Depends(json_body)],
        responses={
            403: {
                "description": "The rollout has not reached the asker's groups yet: one line "
                "in the asker's language and the first day it will (or null).",
                "content": {
                    "application/json": {
                        "example": {
                            "detail": "Der KI-Assistent ist für Ihren Bereich ab 01.07.2026 "
                            "verfügbar.",
                            "available_from": "2026-07-01",
                        }
                    }
                },
            }
        },
    )
    def ask(body: AskRequest, request: Request) -> JSONResponse:
        """Answer a question with cited passages (same JSON as `python -m assistant ask --json`).

        Who asks decides which documents are searched: `Authorization: Bearer <token>` (the
        intranet's JWT) or the SSO proxy's headers; without either, documents for `all` only."""
        who = identity(request)
        try:
            history = [turn.model_dump() for turn in body.history]
            answer = runtime.ask(who, runtime.address(request), body.question, history, "api")
        except QuestionError as exc:
            raise HTTPException(422, detail=str(exc)) from exc
        except BusyError as exc:
            raise HTTPException(503, detail=str(exc), headers={"retry-after": "5"}) from exc
        except EmbeddingError as exc:
            log.error("question not answered: %s", exc)
            raise HTTPException(503, detail=str(exc), headers={"retry-after": "30"}) from exc
        # Plain JSON types already: straight to the response, not through FastAPI's encoder
        # and response validation (which walked every citation again).
        payload = answer.as_dict()
        payload["receipt"] = runtime.receipts.issue(payload, who.user or "")
        return JSONResponse(payload)

    @router.post(
        "/api/feedback",
        tags=["chat"],
        max_body_size=FEEDBACK_BODY_BYTES,
        dependencies=[Depends(json_body)],
    )
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
        nonce = runtime.receipts.check(answer, body.receipt, who.user or "")
        if nonce is None:
            raise HTTPException(
                400,
                detail="receipt: not the receipt of this answer; rate an answer exactly as "
                "/api/ask returned it to you (question, answer, citations and its receipt, "
                "unchanged), within seven days",
            )
        try:
            rated = runtime.feedback.add(answer, body.rating, body.comment, who.groups, nonce)
            return {"id": rated}
        except FeedbackError as exc:
            log.error("%s", exc)
            raise HTTPException(503, detail=str(exc)) from exc

    @router.get("/api/embed-check", tags=["ops"])
    def embed_check() -> dict:
        """For the widget loader: a page of an allowed origin can read this (CORS), any other
        page cannot, and the loader then says the assistant is not enabled there."""
        return {"allowed": True}

    return router
