"""What HR embeds in the intranet: /widget.js (the loader) and /embed/snippet (the code to paste)."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import (
    HTMLResponse,
    Response,
)

from assistant.web.runtime import Runtime

STATIC = Path(__file__).with_name("static")


def embed_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    origins = runtime.settings.embed_origins

    @router.get("/widget.js", include_in_schema=False)
    def widget_js() -> Response:
        """The loader HR pastes into the intranet: a floating button that opens the chat widget."""
        return Response(
            (STATIC / "widget.js").read_text(encoding="utf-8"),
            media_type="application/javascript; charset=utf-8",
            headers={"cache-control": "max-age=300"},
        )

    @router.get("/embed/snippet", include_in_schema=False)
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

    return router
