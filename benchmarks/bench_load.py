"""Load test of the web app: N simulated users ask and rate answers for a bounded time (prints
figures, asserts nothing).

Starts `python app.py` on a copy of corpus/ in a temp dir (data dir there too, per-address rate
limit lifted), sends one warm-up question, then runs --users threads for --seconds. Each user loops:
POST /api/ask (golden questions, round robin offset by user), then with probability 1/3 POST
/api/feedback rating the answer it got. After stopping the server it counts the stored feedback and
audit rows in <data dir>/app.sqlite: "lost feedback records" = acknowledged - stored (should be 0).
Traffic goes to 127.0.0.1 only.

    .venv/bin/python benchmarks/bench_load.py [--users 50] [--seconds 60] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import yaml
from bench_api import start_server  # noqa: E402 (benchmarks/ is the script's own folder)

ROOT = Path(__file__).resolve().parents[1]
ANSWER_KEYS = ("question", "answer", "citations", "answered", "mode")


@dataclass
class UserStats:
    ask_ms: list[float] = field(default_factory=list)
    feedback_ms: list[float] = field(default_factory=list)
    asks_ok: int = 0
    feedback_ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def post(
    client: httpx.Client, path: str, body: dict, stats: UserStats
) -> tuple[float, dict | None]:
    """One POST; returns (latency ms, JSON body on 2xx else None) and records any error."""
    started = time.perf_counter()
    try:
        response = client.post(path, json=body)
        ok = response.is_success
        payload = response.json() if ok else None
        if not ok:
            stats.errors[f"{path} HTTP {response.status_code}"] += 1
    except Exception as exc:  # noqa: BLE001 - every failure is a figure here
        stats.errors[f"{path} {type(exc).__name__}"] += 1
        payload = None
    return (time.perf_counter() - started) * 1000, payload


def run_user(i: int, url: str, questions: list[str], deadline: float, stats: UserStats) -> None:
    rng = random.Random(i)
    with httpx.Client(base_url=url, timeout=120) as client:
        j = 0
        while time.monotonic() < deadline:
            ms, answer = post(
                client, "/api/ask", {"question": questions[(i + j) % len(questions)]}, stats
            )
            stats.ask_ms.append(ms)
            stats.asks_ok += answer is not None
            if answer is not None and rng.random() < 1 / 3:
                body = {key: answer[key] for key in ANSWER_KEYS if key in answer}
                body |= {"rating": rng.choice((1, -1)), "comment": f"user {i} request {j}"}
                ms, ack = post(client, "/api/feedback", body, stats)
                stats.feedback_ms.append(ms)
                stats.feedback_ok += ack is not None
            j += 1


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p95_ms": None, "max_ms": None}
    lat = np.array(values)
    return {
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p95_ms": round(float(np.percentile(lat, 95)), 1),
        "max_ms": round(float(lat.max()), 1),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count_rows(db: Path) -> tuple[int, int]:
    """(feedback rows written by this benchmark, audit_log rows)."""
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM feedback WHERE comment GLOB 'user *'),"
            " (SELECT count(*) FROM audit_log)"
        ).fetchone()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=50, help="concurrent simulated users")
    parser.add_argument("--seconds", type=float, default=60, help="length of the timed run")
    parser.add_argument(
        "--store-from", help="copy this data dir (corpus/ ingested before) instead of ingesting"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
    args = parser.parse_args()
    golden = yaml.safe_load((ROOT / "eval" / "golden.yaml").read_text(encoding="utf-8"))
    questions = [item["question"] for item in golden]
    users = [UserStats() for _ in range(args.users)]
    with tempfile.TemporaryDirectory() as tmp:
        if args.store_from:
            # A store ingested before (same corpus): the server starts in seconds, not minutes.
            shutil.copytree(args.store_from, Path(tmp) / "data")
        proc, url = start_server(
            Path(tmp),
            {
                "ASSISTANT_FEEDBACK_DB_URL": "",  # the default: <data dir>/app.sqlite, counted below
                "ASSISTANT_RATE_LIMIT_PER_MINUTE": "100000",  # one address, many users
                "OMP_WAIT_POLICY": "PASSIVE",
            },
        )
        try:
            warm = httpx.post(url + "/api/ask", json={"question": questions[0]}, timeout=120)
            if not warm.is_success:
                raise SystemExit(f"warm-up request failed: HTTP {warm.status_code}")
            cpu_before = cpu_seconds(proc.pid)
            started = time.monotonic()
            threads = [
                threading.Thread(
                    target=run_user, args=(i, url, questions, started + args.seconds, s)
                )
                for i, s in enumerate(users)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            duration = time.monotonic() - started
            server_cpu_s = cpu_seconds(proc.pid) - cpu_before
        finally:
            stop_server(proc)
        stored, audit_rows = count_rows(Path(tmp) / "data" / "app.sqlite")
    asks_ok = sum(u.asks_ok for u in users)
    feedback_ok = sum(u.feedback_ok for u in users)
    errors = sum((u.errors for u in users), Counter())
    result = {
        "users": args.users,
        "duration_s": round(duration, 1),
        "asks_ok": asks_ok,
        "ask_errors": sum(len(u.ask_ms) for u in users) - asks_ok,
        "feedback_ok": feedback_ok,
        "feedback_errors": sum(len(u.feedback_ms) for u in users) - feedback_ok,
        "feedback_stored": stored,
        "lost_feedback_records": feedback_ok - stored,
        "audit_rows": audit_rows,
        "asks_ok_incl_warmup": asks_ok + 1,
        "ask_latency": percentiles([ms for u in users for ms in u.ask_ms]),
        "feedback_latency": percentiles([ms for u in users for ms in u.feedback_ms]),
        "throughput_asks_per_s": round(asks_ok / duration, 2),
        # The server's CPU time over the run per answered question (its ratings included).
        "server_cpu_ms_per_ask": round(server_cpu_s * 1000 / max(asks_ok, 1), 1),
        "server_cores_busy": round(server_cpu_s / duration, 2),
        "errors": dict(errors.most_common()),
        "cores": os.cpu_count(),
        "loadavg_1min_at_end": round(os.getloadavg()[0], 2),
    }
    if args.json:
        print(json.dumps(result))
        return
    ask, fb = result["ask_latency"], result["feedback_latency"]
    print(
        f"{args.users} users for {result['duration_s']} s on loopback, {os.cpu_count()} cores "
        f"(load average {result['loadavg_1min_at_end']} at the end)"
    )
    print(f"asks:      {asks_ok} ok, {result['ask_errors']} errors")
    print(f"feedback:  {feedback_ok} ok, {result['feedback_errors']} errors")
    lost = result["lost_feedback_records"]
    print(f"lost feedback records: {lost} ({feedback_ok} acknowledged, {stored} stored)")
    print(f"audit rows: {audit_rows} vs {asks_ok + 1} successful asks (incl. 1 warm-up)")
    print(f"ask latency ms:      p50 {ask['p50_ms']}  p95 {ask['p95_ms']}  max {ask['max_ms']}")
    print(f"feedback latency ms: p50 {fb['p50_ms']}  p95 {fb['p95_ms']}  max {fb['max_ms']}")
    print(f"throughput: {result['throughput_asks_per_s']} asks/s")
    print(
        f"server CPU: {result['server_cpu_ms_per_ask']} ms per ask "
        f"({result['server_cores_busy']} cores busy)"
    )
    print("errors:", ", ".join(f"{k}: {v}" for k, v in errors.most_common()) or "none")


if __name__ == "__main__":
    main()
