"""The Chroma client: the embedded store under the data dir, or a Chroma server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import chromadb
from chromadb.config import Settings as ChromaSettings

from assistant.config import Settings


class StoreUnavailableError(RuntimeError):
    """The Chroma server cannot be reached or refuses this client."""


def connect(settings: Settings, path: Path):
    """A client of the Chroma server (settings.chroma_url) or of the embedded store."""
    if not settings.chroma_url:
        return chromadb.PersistentClient(
            path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
        )
    token = settings.chroma_token.get_secret_value()
    auth: dict[str, Any] = (
        {
            # Sent as `Authorization: Bearer <token>` on every request.
            "chroma_client_auth_provider": "chromadb.auth.token_authn.TokenAuthClientProvider",
            "chroma_client_auth_credentials": token,
        }
        if token
        else {}
    )
    try:
        return chromadb.HttpClient(
            host=settings.chroma_url,
            settings=ChromaSettings(anonymized_telemetry=False, **auth),
        )
    except Exception as exc:  # Chroma reports a refusal or an unreachable server as it likes
        raise StoreUnavailableError(
            f"Chroma server {settings.chroma_url} not usable: {exc} (check "
            "ASSISTANT_CHROMA_URL and ASSISTANT_CHROMA_TOKEN)"
        ) from exc
