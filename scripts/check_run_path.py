"""Prove the README's run path in the environment `make install` builds (no dev packages).

    <runtime venv>/bin/python scripts/check_run_path.py [--data-dir DIR]

1. imports every module of `assistant/` (an import that needs a dev package fails here);
2. ingests `corpus/` into a temp data dir with `ingest.py`;
3. answers one German and one English question with `python -m assistant ask --json`;
4. starts `app.py` on a free loopback port, waits for `/healthz` 200, asks `POST /api/ask` and
   expects citations, then stops it.

Only the standard library and the project itself are used, so the check needs nothing that the
runtime environment does not declare. Exit code 0 when every step passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = {"de": "Was muss ein CAIO mitbringen?", "en": "Who approves a new AI use case?"}


def step(message: str) -> None:
    print(f"[run path] {message}", flush=True)


def import_every_module() -> int:
    """Import assistant and each of its submodules; the count of modules imported."""
    import assistant

    names = ["assistant"]
    names += [m.name for m in pkgutil.walk_packages(assistant.__path__, "assistant.")]
    # `python -m assistant` runs the CLI on import; the ask step below runs it for real.
    names.remove("assistant.__main__")
    for name in names:
        importlib.import_module(name)
    return len(names)


def run(args: list[str], env: dict[str, str], timeout: float = 600) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise SystemExit(f"`{' '.join(args)}` failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def check_answer(answer: dict, what: str) -> None:
    if not answer.get("answered") or not answer.get("citations"):
        raise SystemExit(f"{what}: no cited answer: {json.dumps(answer)[:500]}")
    step(f"{what}: answered with {len(answer['citations'])} citations")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, {}


def serve_and_ask(env: dict[str, str], timeout: float) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env
    )
    try:
        deadline = time.monotonic() + timeout
        while (status := http(f"{base}/healthz")[0]) != 200:
            if proc.poll() is not None:
                raise SystemExit(f"app.py exited with {proc.returncode} before it was ready")
            if time.monotonic() > deadline:
                raise SystemExit(f"/healthz not 200 after {timeout:.0f} s (last: {status})")
            time.sleep(1)
        step(f"app.py ready on port {port}")
        status, answer = http(f"{base}/api/ask", {"question": QUESTIONS["de"]})
        if status != 200:
            raise SystemExit(f"POST /api/ask answered {status}")
        check_answer(answer, "POST /api/ask")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, help="empty dir for the store (default: a temp dir)"
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for /healthz")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="run-path-"))
    env = {
        **os.environ,
        "ASSISTANT_DATA_DIR": str(data_dir),
        "ASSISTANT_CORPUS_DIR": str(ROOT / "corpus"),
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "ANONYMIZED_TELEMETRY": "False",
    }
    step(f"imported {import_every_module()} modules of assistant/")
    report = json.loads(run(["ingest.py", "--json"], env))
    if report.get("failed") or not report.get("chunks_total"):
        raise SystemExit(f"ingest failed: {report}")
    step(f"ingested {report['chunks_total']} chunks into {data_dir}")
    for lang, question in QUESTIONS.items():
        answer = json.loads(run(["-m", "assistant", "ask", question, "--json"], env))
        check_answer(answer, f"CLI ({lang})")
    serve_and_ask(env, args.timeout)
    step("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
