"""The admin page at /admin (group `admin`): documents, analytics, knowledge gaps, regression set.

Every event checks the admin again (the AdminGate middleware has already refused everybody else
for the whole /admin path); none of these events is part of the public Gradio API.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import gradio as gr
import pandas as pd
from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from assistant.admin.upload_records import UploadMeta, UploadResult
from assistant.config import Settings
from assistant.ingest.documents import find_corpus_file
from assistant.store.knowledge_base import is_upload
from assistant.store.locks import IngestBusyError
from assistant.web.admin_analytics import analytics_tab
from assistant.web.admin_auth import AdminDenied
from assistant.web.admin_gaps import gaps_tab, regression_tab
from assistant.web.admin_rollout import rollout_tab
from assistant.web.runtime import Runtime

# The list in words HR uses: where a document comes from, its file name, never internal ids.
LIST_COLUMNS = {
    "title": "Titel",
    "status": "Status",
    "kind": "Herkunft",
    "file": "Datei",
    "owner": "Verantwortlich",
    "audience": "Zielgruppe",
    "effective_date": "Gültig ab",
    "expiry_date": "Gültig bis",
    "version": "Version",
    "chunks": "Abschnitte",
    "last_ingest": "Indexiert (UTC)",
    "uploaded_by": "Hochgeladen von",
}
# Pixel widths of the list's columns: a header is never broken inside a word.
LIST_WIDTHS = ["260px", "110px", "120px", "220px", "260px", "110px", "110px", "110px", "80px",
               "110px", "150px", "170px"]  # fmt: skip
RESULT_COLUMNS = {
    "original_name": "Datei",
    "status": "Ergebnis",
    "chunks": "Abschnitte",
    "error": "Fehler",
}
KIND_DE = {"corpus": "Ordner", "upload": "hochgeladen"}
AUDIENCE_DE = {"all": "alle"}
STATUS_DE = {
    "indexed": "indexiert",
    "failed": "fehlgeschlagen",
    "current": "gültig",
    "expired": "abgelaufen",
    "superseded": "ersetzt",
    "pending": "noch nicht gültig",
    "not indexed": "nicht indexiert",
    "indexing": "wird indexiert",
}
# Admin page styles (scoped by Gradio to the page's content).
ADMIN_CSS = """
#documents-table th, #gaps-table th, #regression-candidates th, #regression-items th,
#upload-results th { white-space: nowrap; word-break: keep-all; overflow-wrap: normal; }
#documents-table td, #gaps-table td { word-break: normal; overflow-wrap: anywhere; }
"""


def _checked(runtime: Runtime, request: gr.Request | Request):
    try:
        return runtime.require_admin(request)
    except AdminDenied as exc:
        raise gr.Error(str(exc)) from exc


def _listing(runtime: Runtime) -> tuple[pd.DataFrame, dict, dict]:
    """The documents table and the two dropdowns (every document, uploads only), from one
    listing of the store."""
    rows = runtime.documents_admin().documents()
    frame = pd.DataFrame(
        [{**vars(r), "file": r.original_name or r.source} for r in rows],
        columns=list(LIST_COLUMNS),
    )
    frame["status"] = frame["status"].map(lambda s: STATUS_DE.get(s, s))
    frame["kind"] = frame["kind"].map(lambda s: KIND_DE.get(s, s))
    frame["audience"] = frame["audience"].map(
        lambda a: ", ".join(AUDIENCE_DE.get(g.strip(), g.strip()) for g in str(a).split(","))
    )
    every = [(f"{r.title} ({r.original_name or r.source})", r.source) for r in rows]
    # (the dropdowns' values stay the internal sources; what they show is title and file name)
    uploads = [(label, source) for label, source in every if is_upload(source)]
    return (
        frame.rename(columns=LIST_COLUMNS),
        gr.update(choices=every, value=None),
        gr.update(choices=uploads, value=None),
    )


def _results_frame(results: list[UploadResult]):
    """The per-file results table, shown from the first result on."""
    frame = pd.DataFrame([vars(r) for r in results], columns=list(RESULT_COLUMNS))
    frame["status"] = frame["status"].map(lambda s: STATUS_DE.get(s, s))
    return gr.update(value=frame.rename(columns=RESULT_COLUMNS), visible=True)


class _DocumentHandlers:
    """What the documents tab's buttons do; every handler checks the admin first."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def refresh(self, request: gr.Request):
        _checked(self.runtime, request)
        return _listing(self.runtime)

    def upload(
        self,
        files,
        title,
        audience,
        owner,
        effective,
        expiry,
        version,
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008 - Gradio's progress hook
    ):
        who = _checked(self.runtime, request)
        if not files:
            raise gr.Error("Bitte mindestens eine Datei auswählen.")
        meta = UploadMeta(
            title or "", audience or "", owner or "", _day(effective), _day(expiry), version or ""
        )
        admin = self.runtime.documents_admin()
        results = []
        for file in progress.tqdm(files, desc="Dokumente werden indexiert"):
            path = Path(file if isinstance(file, str) else file.name)
            original = getattr(file, "orig_name", None) or path.name
            try:
                data = path.read_bytes()
            except OSError as exc:
                results.append(UploadResult(original, "failed", error=f"cannot read upload: {exc}"))
                continue
            results.append(admin.upload(original, data, meta, who.user or ""))
        failed = [r for r in results if r.status != "indexed"]
        message = f"**{len(results) - len(failed)} von {len(results)} Dateien indexiert**" + (
            f"; {len(failed)} fehlgeschlagen (Grund in der Tabelle)" if failed else "."
        )
        # The result stays in this tab (a notification would follow the admin to the others).
        return (message, _results_frame(results), *_listing(self.runtime), gr.update(value=None))

    def reindex(self, source, request: gr.Request):
        _checked(self.runtime, request)
        if not source:
            raise gr.Error("Bitte ein Dokument auswählen.")
        try:
            result = self.runtime.documents_admin().reindex(source)
        except (KeyError, IngestBusyError) as exc:
            raise gr.Error(str(exc)) from exc
        message = "**Neu indexiert.**" if result.status == "indexed" else "**Fehlgeschlagen.**"
        return message, _results_frame([result]), _listing(self.runtime)[0]

    def reindex_all(self, request: gr.Request):
        _checked(self.runtime, request)
        try:
            results = self.runtime.documents_admin().reindex_all()
        except IngestBusyError as exc:
            raise gr.Error(str(exc)) from exc
        failed = sum(r.status != "indexed" for r in results)
        message = f"**{len(results) - failed} von {len(results)} Dokumenten neu indexiert.**"
        return message, _results_frame(results), _listing(self.runtime)[0]

    def delete(self, source, request: gr.Request):
        _checked(self.runtime, request)
        if not source:
            raise gr.Error("Bitte ein hochgeladenes Dokument auswählen.")
        try:
            removed = self.runtime.documents_admin().delete(source)
        except (KeyError, IngestBusyError, PermissionError) as exc:
            raise gr.Error(str(exc)) from exc
        return (f"**Gelöscht**: {removed} Abschnitte entfernt.", *_listing(self.runtime))


def _upload_form() -> tuple[gr.Button, list]:
    """The files and the metadata HR enters with them; (button, inputs in handler order)."""
    with gr.Row():
        files = gr.File(label="Dateien", file_count="multiple", elem_id="upload-files", scale=2)
        with gr.Column(scale=3):
            with gr.Row():
                title = gr.Textbox(label="Titel (leer: aus dem Dokument)", elem_id="upload-title")
                audience = gr.Textbox(
                    label="Zielgruppe (z. B. all oder hr, it)", elem_id="upload-audience"
                )
                owner = gr.Textbox(label="Verantwortlich", elem_id="upload-owner")
            with gr.Row():
                effective = gr.DateTime(
                    label="Gültig ab", include_time=False, type="string", elem_id="upload-effective"
                )
                expiry = gr.DateTime(
                    label="Gültig bis", include_time=False, type="string", elem_id="upload-expiry"
                )
                version = gr.Textbox(label="Version", elem_id="upload-version")
            button = gr.Button("Hochladen und indexieren", variant="primary", elem_id="upload")
    return button, [files, title, audience, owner, effective, expiry, version]


def documents_tab(runtime: Runtime) -> tuple[Callable, list]:
    """Upload with metadata and per-file results; the list; re-index one or all; delete."""
    handlers = _DocumentHandlers(runtime)
    with gr.Tab("Dokumente", id="documents"):
        gr.Markdown(
            "Neue Richtlinien und Dokumente hochladen (PDF, Markdown, Text, HTML, DOCX; "
            f"höchstens {runtime.settings.max_file_mb:g} MB je Datei). Sie sind sofort im Chat "
            "beantwortbar. Eine neue Fassung eines Dokuments (gleicher Titel) ersetzt die alte; "
            "abgelaufene Dokumente werden nicht mehr als gültig zitiert."
        )
        upload_button, inputs = _upload_form()
        message = gr.Markdown(elem_id="upload-message")
        results = gr.Dataframe(
            headers=list(RESULT_COLUMNS.values()),
            label="Ergebnis je Datei",
            interactive=False,
            elem_id="upload-results",
            wrap=True,
            visible=False,
        )
        gr.Markdown("### Alle Dokumente")
        table = gr.Dataframe(
            headers=list(LIST_COLUMNS.values()),
            column_widths=LIST_WIDTHS,
            label="Dokumente",
            interactive=False,
            elem_id="documents-table",
            wrap=True,
            max_height=520,
        )
        with gr.Row():
            pick = gr.Dropdown(label="Dokument neu indexieren", choices=[], elem_id="reindex-pick")
            reindex_button = gr.Button("Neu indexieren", elem_id="reindex")
            reindex_all_button = gr.Button("Alle neu indexieren", elem_id="reindex-all")
        with gr.Row():
            delete_pick = gr.Dropdown(
                label="Hochgeladenes Dokument löschen", choices=[], elem_id="delete-pick"
            )
            delete_button = gr.Button("Löschen", variant="stop", elem_id="delete")
        refresh_button = gr.Button("Liste aktualisieren", size="sm", elem_id="refresh-documents")

    listing = [table, pick, delete_pick]
    upload_outputs = [message, results, *listing, inputs[0]]
    upload_button.click(handlers.upload, inputs, upload_outputs, api_name=False)
    reindex_button.click(handlers.reindex, [pick], [message, results, table], api_name=False)
    reindex_all_button.click(handlers.reindex_all, None, [message, results, table], api_name=False)
    delete_button.click(handlers.delete, [delete_pick], [message, *listing], api_name=False)
    refresh_button.click(handlers.refresh, None, listing, api_name=False)
    return handlers.refresh, listing


def _day(value) -> str:
    """A DateTime field's value as YYYY-MM-DD ('' when empty)."""
    return str(value or "").strip()[:10]


def build_admin_ui(runtime: Runtime) -> gr.Blocks:
    with gr.Blocks(title="KI-Rollen-Assistent · Verwaltung") as ui:
        gr.Markdown("## KI-Rollen-Assistent · Verwaltung", elem_id="admin-header")
        with gr.Tabs():
            refresh, outputs = documents_tab(runtime)
            analytics_tab(runtime)
            gaps_tab(runtime)
            regression_tab(runtime)
            rollout_tab(runtime)
        ui.load(refresh, None, outputs, api_name=False)
    ui.queue(default_concurrency_limit=2, max_size=32)
    return ui


def upload_limit(settings: Settings) -> int:
    """The largest admin request: several files of the largest size, plus form overhead."""
    return int(settings.max_file_mb * 1_000_000) * 10 + 1_000_000


# Long: a router: each route is a short function of its own, sharing the runtime.
def documents_router(runtime: Runtime) -> APIRouter:
    """The same actions as JSON for scripts: /api/admin/documents (admins only)."""
    router = APIRouter(prefix="/api/admin", tags=["admin"])

    def admin(request: Request):
        try:
            return runtime.require_admin(request)
        except AdminDenied as exc:
            raise HTTPException(exc.status, detail=str(exc)) from exc

    @router.get("/documents")
    def list_documents(request: Request) -> list[dict]:
        """Every document with chunk count, audience, owner, dates, validity and last ingest."""
        admin(request)
        return [vars(r) for r in runtime.documents_admin().documents()]

    @router.post("/documents", max_body_size=upload_limit(runtime.settings))
    async def upload_documents(
        request: Request,
        files: Annotated[list[UploadFile], File(description="one or many documents")],
        title: Annotated[str, Form()] = "",
        audience: Annotated[str, Form()] = "",
        owner: Annotated[str, Form()] = "",
        effective_date: Annotated[str, Form()] = "",
        expiry_date: Annotated[str, Form()] = "",
        version: Annotated[str, Form()] = "",
        document_id: Annotated[str, Form()] = "",
    ) -> dict:
        """Upload one or many files with the same metadata; one result per file (HTTP 200 even
        if some failed: each result names its error)."""
        who = admin(request)
        meta = UploadMeta(title, audience, owner, effective_date, expiry_date, version, document_id)
        documents = runtime.documents_admin()
        limit = int(runtime.settings.max_file_mb * 1_000_000)
        results = []
        for file in files:
            data = await file.read(limit + 1)
            results.append(
                await run_in_threadpool(documents.upload, file.filename or "", data, meta, who.user)
            )
        return {"results": [vars(r) for r in results]}

    @router.delete("/documents/{source:path}")
    def delete_document(source: str, request: Request) -> dict:
        admin(request)
        if not is_upload(source):
            if find_corpus_file(runtime.settings.corpus_dir, source) is None:
                raise HTTPException(404, detail=f"no document {source!r}")
            raise HTTPException(
                409, detail=f"{source} is a file of the corpus folder; remove it there"
            )
        try:
            removed = runtime.documents_admin().delete(source)
        except KeyError as exc:
            raise HTTPException(404, detail=str(exc)) from exc
        except IngestBusyError as exc:
            raise HTTPException(409, detail=str(exc)) from exc
        return {"source": source, "chunks_removed": removed}

    @router.post("/reindex")
    def reindex(request: Request, source: str | None = None) -> dict:
        """Re-index one document (`?source=`) or everything."""
        admin(request)
        try:
            documents = runtime.documents_admin()
            results = [documents.reindex(source)] if source else documents.reindex_all()
        except KeyError as exc:
            raise HTTPException(404, detail=str(exc)) from exc
        except IngestBusyError as exc:
            raise HTTPException(409, detail=str(exc)) from exc
        return {"results": [vars(r) for r in results]}

    return router
