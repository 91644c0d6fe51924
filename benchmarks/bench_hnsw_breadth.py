"""How exact and how fast the unit search is for Chroma's HNSW search breadth (ef_search): for each
breadth a fresh collection of the same unit vectors, the 80 nearest asked for each question, their
recall against the exact nearest (numpy) and the query time p50/p95, with the ratio to breadth 100
(Chroma's default) in the same run. Prints figures, asserts nothing.

With `--data-dir` the vectors are a store's own units and the questions those of a question set
(embedded with the real model); without, `--size` synthetic clustered vectors and questions.

    .venv/bin/python benchmarks/bench_hnsw_breadth.py --data-dir <ingested data dir>
    .venv/bin/python benchmarks/bench_hnsw_breadth.py --size 100000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import chromadb  # noqa: E402

K = 80  # the unit candidates a question asks for (ASSISTANT_UNIT_CANDIDATES)


def synthetic(size: int, questions: int) -> tuple[np.ndarray, np.ndarray]:
    """Clustered unit vectors and questions near the same centres (text embeddings cluster)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(500, 384)).astype(np.float32)

    def near(n: int) -> np.ndarray:
        x = centres[rng.integers(0, 500, n)] + 0.6 * rng.normal(size=(n, 384)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return near(size), near(questions)


def real(data_dir: Path, question_set: Path) -> tuple[np.ndarray, np.ndarray]:
    """A store's unit vectors and a question set's questions, embedded as the retriever does."""
    from assistant.answering.pipeline import build_knowledge_base
    from assistant.config import load_settings
    from assistant.evaluation.harness import load_golden
    from assistant.store.embeddings import embed_queries

    kb = build_knowledge_base(load_settings(data_dir=data_dir))
    units = kb.unit_store._collection.get(include=["embeddings"])["embeddings"]
    questions = [item.question for item in load_golden(question_set)]
    vectors = embed_queries(kb.embeddings, questions)
    return np.asarray(units, dtype=np.float32), np.asarray(vectors, dtype=np.float32)


def measure(units: np.ndarray, questions: np.ndarray, breadth: int) -> dict:
    client = chromadb.PersistentClient(path=tempfile.mkdtemp(prefix="bench-hnsw-"))
    collection = client.create_collection(
        f"units-{breadth}",
        configuration={"hnsw": {"space": "cosine", "ef_search": breadth}},
        embedding_function=None,
    )
    ids = [str(i) for i in range(len(units))]
    start = time.perf_counter()
    for i in range(0, len(units), 5000):
        collection.add(ids=ids[i : i + 5000], embeddings=units[i : i + 5000])
    build = time.perf_counter() - start
    collection.query(query_embeddings=[questions[0]], n_results=K)  # loads the index
    times, recall = [], []
    for q in questions:
        exact = set(np.argsort(-(units @ q))[:K].astype(str))
        start = time.perf_counter()
        found = collection.query(query_embeddings=[q], n_results=K, include=["distances"])
        times.append(time.perf_counter() - start)
        recall.append(len(exact & set(found["ids"][0])) / min(K, len(units)))
    return {
        "breadth": breadth,
        "build_s": build,
        "p50_ms": float(np.percentile(times, 50)) * 1e3,
        "p95_ms": float(np.percentile(times, 95)) * 1e3,
        "recall": float(np.mean(recall)),
        "missed": int(round(sum(1 - r for r in recall) * min(K, len(units)))),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="an ingested store: its units")
    parser.add_argument("--golden", type=Path, default=REPO / "eval" / "test-unseen-14.yaml")
    parser.add_argument("--size", type=int, default=100_000, help="synthetic units")
    parser.add_argument("--breadths", default="100,200,400")
    args = parser.parse_args()
    if args.data_dir:
        units, questions = real(args.data_dir, args.golden)
    else:
        units, questions = synthetic(args.size, 200)
    print(f"{len(units)} units, {len(questions)} questions, {K} nearest each")
    rows = [measure(units, questions, int(b)) for b in args.breadths.split(",")]
    base = rows[0]
    print("ef_search | recall@80 | missed | query p50 / p95 ms | ratio p50 | build s")
    for r in rows:
        print(
            f"{r['breadth']:9d} | {r['recall']:.4f} | {r['missed']:6d} | "
            f"{r['p50_ms']:.2f} / {r['p95_ms']:.2f} | {r['p50_ms'] / base['p50_ms']:.2f} | "
            f"{r['build_s']:.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
