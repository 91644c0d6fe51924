"""The app's side of bench_scale: a process of its own on a store another process built, as a
replica would run it. Not a test; started by bench_scale.py (--app), one JSON line per step.

    python benchmarks/scale_app.py DATA_DIR QUESTIONS_JSON

It opens the store, answers every question once and reports its memory (VmRSS, VmHWM); then, for
each line "changed" on stdin (the parent moved the version marker, as another process's ingest
does), the time of the next question and of the one after it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from assistant.answering.pipeline import build_assistant  # noqa: E402
from assistant.config import Settings  # noqa: E402


def status_mb(field: str) -> float | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def say(**fields) -> None:
    print(json.dumps(fields), flush=True)


def main() -> int:
    data_dir, questions_file = Path(sys.argv[1]), Path(sys.argv[2])
    questions = json.loads(questions_file.read_text(encoding="utf-8"))
    settings = Settings(_env_file=None, corpus_dir=data_dir / "corpus-unused", data_dir=data_dir)
    started = time.perf_counter()
    assistant = build_assistant(settings)
    assistant.ask(questions[0])
    ready_s = time.perf_counter() - started
    for q in questions:
        assistant.ask(q)
    say(
        step="ready",
        ready_ms=round(ready_s * 1000, 1),
        rss_mb=status_mb("VmRSS"),
        hwm_mb=status_mb("VmHWM"),
    )
    q = questions[1 % len(questions)]
    for line in sys.stdin:
        if line.strip() != "changed":
            break
        first, _ = time.perf_counter(), assistant.ask(q)
        first_ms = (time.perf_counter() - first) * 1000
        wait = getattr(getattr(assistant.retriever, "index", None), "wait", None)
        if wait:
            wait()  # the new version's index, built in the background
        second, _ = time.perf_counter(), assistant.ask(q)
        say(
            step="changed",
            first_ms=round(first_ms, 1),
            next_ms=round((time.perf_counter() - second) * 1000, 1),
            rss_mb=status_mb("VmRSS"),
            hwm_mb=status_mb("VmHWM"),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
