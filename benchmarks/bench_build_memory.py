"""The memory a replica needs while it builds the index of a corpus version (BM25, every chunk's row
and vector, every unit's chunk): RSS before, the high-water mark during, and RSS after the build.
Prints figures, asserts nothing.

A container's memory limit applies to the peak, not to what stays: a build that needs 1.9 GB for
a moment kills a replica limited to 1.5 GB although 1.1 GB remain afterwards. Runs in a process of
its own on a store `bench_scale.py --synthetic-cache DIR` kept (the embedded store: Chroma's HNSW
of chunks and units are loaded first, as after a replica's first question).

    .venv/bin/python benchmarks/bench_build_memory.py DIR/data-synthetic-50000-0.02-1234 [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from assistant.answering.pipeline import build_knowledge_base  # noqa: E402
from assistant.config import load_settings  # noqa: E402
from assistant.search.snapshot import CorpusIndex, _release_freed_memory  # noqa: E402


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    raise KeyError(field)


def reset_peak() -> None:
    """Start VmHWM again from the current RSS (Linux: /proc/self/clear_refs, value 5)."""
    Path("/proc/self/clear_refs").write_text("5")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="a store bench_scale.py --synthetic-cache kept")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    args = parser.parse_args()
    kb = build_knowledge_base(load_settings(data_dir=args.data_dir))
    probe = kb.store._collection.get(limit=1, include=["embeddings"])["embeddings"][0]
    for store in (kb.store, kb.unit_store):  # both HNSW in memory, as after a first question
        store._collection.query(query_embeddings=[list(probe)], n_results=5)
    figures = {"chunks": kb.count(), "rss_before_mb": status_mb("VmRSS")}
    reset_peak()
    started = time.perf_counter()
    index = CorpusIndex.read(kb)
    _release_freed_memory()  # as IndexKeeper does after a build
    figures["build_s"] = round(time.perf_counter() - started, 1)
    figures["peak_mb"] = status_mb("VmHWM")
    figures["rss_after_mb"] = status_mb("VmRSS")
    figures["units"] = index.unit_count
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name:>14}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
