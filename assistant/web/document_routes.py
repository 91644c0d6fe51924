"""The cited documents: the file as stored (/files/, PDFs at the cited page) and a readable view
(/view/, the cited passage marked). Only files of the corpus or uploads, only for readers in the
document's audience or with the signed link an answer carried."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from assistant.identity import ANONYMOUS, IdentityError, resolve
from assistant.ingest.chunking import passage_text
from assistant.ingest.corpus import read as read_document
from assistant.ingest.documents import SourceDocument, find_corpus_file
from assistant.ingest.units import split_units
from assistant.store.knowledge_base import is_upload
from assistant.web.document_view import render_document
from assistant.web.runtime import Runtime

# Documents are served sandboxed: no script, no form, no plugin of theirs runs in our origin.
DOCUMENT_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_NOT_FOUND = "no such document"


# Long: a router: each route is a short function of its own, sharing the runtime.
def documents_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    settings = runtime.settings

    def locate(source: str, request: Request, sig: str | None) -> Path:
        """The file behind a cited source, if this reader may see it (404 alike otherwise: a
        restricted document's existence is not revealed either)."""
        if is_upload(source):
            try:
                path = runtime.documents_admin().file_path(source)
            except KeyError as exc:
                raise HTTPException(404, detail=_NOT_FOUND) from exc
        else:
            found = find_corpus_file(settings.corpus_dir, source)
            if found is None:
                raise HTTPException(404, detail=_NOT_FOUND)
            path = found
        assistant = runtime.get()
        if not runtime.links.check(source, sig):
            try:
                who = resolve(
                    request.headers, request.client.host if request.client else None, settings
                )
            except IdentityError:
                who = ANONYMOUS
            if not assistant.retriever.readable(source, who.groups):
                raise HTTPException(404, detail=_NOT_FOUND)
        return path

    @router.get("/files/{source:path}")
    def document_file(source: str, request: Request, sig: str | None = None) -> Response:
        """The document as stored, read-only."""
        # Sources are stored and cited in Unicode NFC, whatever form the name has on disk.
        path = locate(unicodedata.normalize("NFC", source), request, sig)
        # A document's own content (HTML, a PDF's scripts and links) must not run in our origin.
        headers = {"cache-control": "no-store", "content-security-policy": DOCUMENT_CSP}
        media = {".md": "text/plain; charset=utf-8", ".txt": "text/plain; charset=utf-8"}
        return FileResponse(path, media_type=media.get(path.suffix.lower()), headers=headers)

    @router.get("/view/{source:path}")
    def document_view(
        source: str,
        request: Request,
        c: str | None = None,
        lang: str = "de",
        sig: str | None = None,
    ) -> HTMLResponse:
        """The document as a readable page; `c` names the cited chunk, whose text is marked."""
        source = unicodedata.normalize("NFC", source)
        path = locate(source, request, sig)
        doc = _load(runtime, source, path)
        cited = []
        chunk = runtime.knowledge_base().stored_chunk(c) if c else None
        if chunk is not None and chunk[1].get("source") == source:
            cited = [u.text for u in split_units(passage_text(chunk[0]))]
        page = render_document(doc, cited, lang if lang in ("de", "en") else "de")
        headers = {"cache-control": "no-store", "content-security-policy": DOCUMENT_CSP}
        return HTMLResponse(page, headers=headers)

    return router


def _load(runtime: Runtime, source: str, path: Path) -> SourceDocument:
    """The document as the index read it (an upload with the metadata HR entered)."""
    if is_upload(source):
        return runtime.documents_admin().document(source)
    return read_document(runtime.settings, path, runtime.settings.corpus_dir)
