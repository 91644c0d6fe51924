"""The real server as a subprocess on a free loopback port."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, free_port

ALLOWED_ORIGIN = "http://intranet.nordwerk.test"
JWT_SECRET = "test-only-intranet-signing-secret-0123456789"  # noqa: S105 (a test fixture)


def make_token(sub: str = "u123", groups=("hr",), ttl_s: int = 3600, secret: str = JWT_SECRET):
    """A widget token as the intranet would sign it."""
    import jwt

    claims = {"sub": sub, "groups": list(groups), "exp": int(time.time()) + ttl_s}
    return jwt.encode(claims, secret, algorithm="HS256")


def start_server(corpus, data_dir, extra_env=None, timeout=240, preexec_fn=None, ready=None):
    """The app on 127.0.0.1 and a free port: (process, base URL) once `ready(GET /healthz)` holds
    (default: it answers 200). preexec_fn runs in the child before the app starts."""
    ready = ready or (lambda response: response.status_code == 200)
    port = free_port()
    env = {
        **os.environ,
        "ASSISTANT_CORPUS_DIR": str(corpus),
        "ASSISTANT_DATA_DIR": str(data_dir),
        **(extra_env or {}),
    }
    log = open(data_dir.parent / f"server-{port}.log", "w")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=preexec_fn,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {Path(log.name).read_text()[-2000:]}")
        try:
            if ready(httpx.get(url + "/healthz", timeout=2)):
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"server not ready in {timeout}s: {Path(log.name).read_text()[-2000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@contextmanager
def running_app(corpus, data_dir, extra_env=None, **kwargs):
    """start_server as a context: the base URL, the app stopped afterwards."""
    proc, url = start_server(corpus, data_dir, extra_env, **kwargs)
    try:
        yield url
    finally:
        stop_server(proc)


@pytest.fixture(scope="session")
def ingested_corpus(real_corpus_store):
    """(corpus, data dir) of the session's store of the shipped corpus (tests/conftest.py: ingested
    once, in this process). The apps below start on copies of both; their start-up ingest finds
    every file unchanged, as an app restarted on its store does, instead of embedding the corpus
    again in every app process."""
    return real_corpus_store.settings.corpus_dir, real_corpus_store.settings.data_dir


def copy_store(ingested: tuple[Path, Path], tmp: Path) -> tuple[Path, Path]:
    """A copy of an ingested corpus and its store under tmp: (corpus, data dir)."""
    for source, name in zip(ingested, ("corpus", "data"), strict=True):
        shutil.copytree(source, tmp / name)
    return tmp / "corpus", tmp / "data"


@pytest.fixture(scope="session")
def server_store(tmp_path_factory, ingested_corpus):
    """(corpus, data dir): a copy of the shipped corpus and the store `server` keeps for it."""
    return copy_store(ingested_corpus, tmp_path_factory.mktemp("server"))


@pytest.fixture(scope="session")
def server(server_store):
    """The app on a copy of the shipped corpus; yields its base URL."""
    corpus, data_dir = server_store
    proc, url = start_server(
        corpus,
        data_dir,
        {
            "ASSISTANT_EMBED_ORIGINS": ALLOWED_ORIGIN,
            "ASSISTANT_JWT_SECRET": JWT_SECRET,
            "ASSISTANT_RATE_LIMIT_PER_MINUTE": "1000",  # many tests, one address
        },
    )
    yield url
    proc.terminate()
    proc.wait(20)


# --- real-browser tests ------------------------------------------------------------------------

BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


class StaticSite:
    """A tiny web site on its own loopback origin (an "intranet"), serving pages from a dict.

    The port is bound on creation, so it is reserved before anything needs to know it.
    """

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        pages: dict[str, str] = {}
        self.pages = pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                body = pages.get(self.path.split("?")[0])
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode("utf-8")
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        import threading

        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def intranet():
    """The allowed embedding origin (its port is reserved before the app server starts)."""
    site = StaticSite()
    yield site
    site.close()


@pytest.fixture(scope="session")
def foreign_site():
    """An origin that is NOT in ASSISTANT_EMBED_ORIGINS."""
    site = StaticSite()
    yield site
    site.close()


@pytest.fixture(scope="session")
def browser_server(tmp_path_factory, intranet, ingested_corpus):
    """One app server for all browser tests: (base URL, data dir); the intranet may frame it."""
    corpus, data_dir = copy_store(ingested_corpus, tmp_path_factory.mktemp("browser-server"))
    proc, url = start_server(
        corpus,
        data_dir,
        extra_env={
            "ASSISTANT_EMBED_ORIGINS": intranet.origin,
            "ASSISTANT_JWT_SECRET": JWT_SECRET,
            "ASSISTANT_RATE_LIMIT_PER_MINUTE": "1000",
        },
    )
    yield url, data_dir
    stop_server(proc)


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (never a downloaded browser build)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_context(browser):
    """Factory for browser contexts (German by default), all closed after the test."""
    contexts = []

    def make(locale: str = "de-DE"):
        context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(30_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context):
    return new_context().new_page()


@pytest.fixture(scope="session")
def screenshot():
    """screenshot(page, name): save a PNG under artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def shoot(page, name: str, **kwargs) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), **kwargs)
        return path

    return shoot
