"""The real server as a subprocess on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, free_port


ALLOWED_ORIGIN = "http://intranet.nordwerk.test"


def start_server(corpus, data_dir, extra_env=None, timeout=240):
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
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {Path(log.name).read_text()[-2000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"server not ready in {timeout}s: {Path(log.name).read_text()[-2000:]}")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The app on a copy of the shipped corpus; yields its base URL."""
    import shutil

    tmp = tmp_path_factory.mktemp("server")
    corpus = tmp / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    proc, url = start_server(corpus, tmp / "data", {"ASSISTANT_EMBED_ORIGINS": ALLOWED_ORIGIN})
    yield url
    proc.terminate()
    proc.wait(20)
