"""POST /api/ask latency with 1, 10 and 50 concurrent clients on loopback (prints figures, asserts nothing).

Starts `python app.py` on a copy of corpus/ in a temp dir, waits for /healthz, then for each
concurrency level runs a bounded number of requests (golden-set questions, round robin) and prints
p50/p95/max latency, throughput and the error count. Traffic goes to 127.0.0.1 only.

    .venv/bin/python benchmarks/bench_api.py [--requests 200] [--levels 1,10,50] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    tmp: Path, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """app.py on a copy of corpus/, data dir <tmp>/data; returns once /healthz answers 200."""
    corpus = tmp / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    port = free_port()
    env = {
        **os.environ,
        "ASSISTANT_CORPUS_DIR": str(corpus),
        "ASSISTANT_DATA_DIR": str(tmp / "data"),
        "ASSISTANT_LOG_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
        **(extra_env or {}),
    }
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"server not ready within 300 s (exit code {proc.poll()})")


def run_level(url: str, questions: list[str], clients: int, requests: int) -> dict:
    latencies: list[float] = []
    errors = 0

    def one(i: int, client: httpx.Client) -> tuple[float, bool]:
        started = time.perf_counter()
        try:
            response = client.post("/api/ask", json={"question": questions[i % len(questions)]})
            ok = response.status_code == 200 and "answered" in response.json()
        except httpx.HTTPError:
            ok = False
        return (time.perf_counter() - started) * 1000, ok

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    with httpx.Client(base_url=url, timeout=60, limits=limits) as client:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            for ms, ok in pool.map(lambda i: one(i, client), range(requests)):
                latencies.append(ms)
                errors += not ok
        wall = time.perf_counter() - started
    lat = np.array(latencies)
    return {
        "clients": clients,
        "requests": requests,
        "errors": errors,
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p95_ms": round(float(np.percentile(lat, 95)), 1),
        "max_ms": round(float(lat.max()), 1),
        "throughput_rps": round(requests / wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200, help="requests per concurrency level")
    parser.add_argument("--levels", default="1,10,50", help="comma-separated client counts")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    golden = yaml.safe_load((ROOT / "eval" / "golden.yaml").read_text(encoding="utf-8"))
    questions = [item["question"] for item in golden]
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp))
        try:
            httpx.post(url + "/api/ask", json={"question": "warm-up"}, timeout=60)
            results = [
                run_level(url, questions, int(level), max(args.requests, int(level)))
                for level in args.levels.split(",")
            ]
        finally:
            proc.terminate()
            proc.wait(30)
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "results": results}))
        return
    print(
        f"POST /api/ask on loopback, {os.cpu_count()} cores, {len(questions)} golden questions round robin"
    )
    print(
        f"{'clients':>8} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'req/s':>7}"
    )
    for r in results:
        print(
            f"{r['clients']:>8} {r['requests']:>9} {r['errors']:>7} {r['p50_ms']:>8} {r['p95_ms']:>8} "
            f"{r['max_ms']:>8} {r['throughput_rps']:>7}"
        )


if __name__ == "__main__":
    main()
