"""Real servers for the shared-store mode: a Chroma server (`chroma run` from the chromadb package)
and a PostgreSQL cluster from Debian's package, each on a free loopback port with its data in a
temp dir. Used by the test fixtures and by benchmarks/bench_server.py."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unique_name(prefix: str = "t") -> str:
    """A name that is valid as a Chroma collection and a PostgreSQL database (lower-case)."""
    return f"{prefix}{uuid.uuid4().hex[:16]}"


def _wait(ready, proc: subprocess.Popen, what: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text(errors='replace')[-2000:]}")
        if ready():
            return
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{what} not ready in {timeout}s: {log.read_text(errors='replace')[-2000:]}")


class ChromaServer:
    """`chroma run` on 127.0.0.1 and a free port, data in `root`; ready once its heartbeat answers."""

    def __init__(self, root: Path, timeout: float = 60) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "chroma.log"
        chroma = Path(sys.executable).with_name("chroma")
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [str(chroma), "run", "--path", str(root / "data"), "--host", "127.0.0.1"]
                + ["--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
            )
        _wait(self.heartbeat, self.proc, "chroma server", self.log, timeout)

    def heartbeat(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/v2/heartbeat", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def _postgres_bin(name: str) -> str:
    """A PostgreSQL server program from Debian's package (newest version installed)."""
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return found[-1]
    if shutil.which(name):
        return shutil.which(name)
    raise RuntimeError(
        f"PostgreSQL's {name} not found: install Debian's postgresql package (make system-deps)"
    )


class PostgresServer:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl) on 127.0.0.1 and a free port.

    PostgreSQL refuses to run as root, so as root its programs run as the `postgres` user (which
    Debian's package creates) via runuser, in a temp dir that user owns. Durability is switched
    off (fsync, full-page writes): the data is gone after the run anyway.
    """

    def __init__(self, timeout: float = 60) -> None:
        # Not under pytest's tmp dir: that is private to root, and the postgres user must reach it.
        self.root = Path(tempfile.mkdtemp(prefix="assistant-pg-"))
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self.port = free_port()
        self._run(
            _postgres_bin("initdb"),
            ["-D", str(self.data), "-A", "trust", "-U", "postgres"]
            + ["-E", "UTF8", "--no-locale", "--no-sync"],
        )
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off -c max_connections=300"
        )
        self._run(
            _postgres_bin("pg_ctl"),
            ["-D", str(self.data), "-l", str(self.root / "postgres.log"), "-w"]
            + ["-t", str(int(timeout)), "-o", options, "start"],
        )
        self.admin_url = self.url("postgres")

    def _run(self, program: str, args: list[str]) -> None:
        result = subprocess.run(
            [*self.as_user, program, *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            log = self.root / "postgres.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{Path(program).name} failed: {result.stderr}\n{tail}")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = name or unique_name("db")
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(_postgres_bin("pg_ctl"), ["-D", str(self.data), "-m", "immediate", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class TokenGate:
    """A reverse proxy that lets a request through to `upstream` only with
    `Authorization: Bearer <token>` (answering 401 otherwise), as a deployment's gateway in front
    of a Chroma server does; counts what it let through and what it refused."""

    def __init__(self, upstream: str, token: str) -> None:
        self.passed = 0
        self.refused = 0
        gate = self
        client = httpx.Client(base_url=upstream, timeout=60)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.headers.get("authorization") != f"Bearer {token}":
                    gate.refused += 1
                    self._reply(401, {"content-type": "application/json"}, b'{"error":"auth"}')
                    return
                gate.passed += 1
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "authorization", "content-length", "connection")
                }
                upstream_reply = client.request(
                    self.command, self.path, content=body, headers=headers
                )
                keep = {
                    k: v
                    for k, v in upstream_reply.headers.items()
                    if k.lower() in ("content-type", "chroma-trace-id")
                }
                self._reply(upstream_reply.status_code, keep, upstream_reply.content)

            def _reply(self, status: int, headers: dict, body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward  # noqa: N815

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._client = client
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._client.close()
