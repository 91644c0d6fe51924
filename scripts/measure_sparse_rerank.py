"""Measure the latent-terms rerank (search/latent.py) on the tuning question sets, per weight.

    .venv/bin/python scripts/measure_sparse_rerank.py [--data-dir DIR] [--weights 0,1,2,3]

The store must have been ingested with latent terms (`ASSISTANT_LATENT_WEIGHT=2 python ingest.py`:
they are off by default, and that ingest mends a store from before them). Each answerable question
of the tuning sets is retrieved once without the rerank; then `latent.rerank` reorders those
passages at each weight, exactly as retrieval does for a question not in the corpus language
(German questions are printed too, reordered the same way, to show what the rerank would do to
them). Prints recall@1 by language per weight, and per set at the largest weight. The held-out sets
are never read.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from assistant.answering.pipeline import build_knowledge_base, build_retriever  # noqa: E402
from assistant.audience import reader_groups  # noqa: E402
from assistant.config import load_settings  # noqa: E402
from assistant.evaluation.harness import TUNING_SETS, is_relevant, load_golden  # noqa: E402
from assistant.search import latent  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="the store to search (default: ASSISTANT_DATA_DIR)")
    parser.add_argument("--weights", default="0,1,2,3")
    args = parser.parse_args()
    overrides = {"data_dir": Path(args.data_dir)} if args.data_dir else {}
    settings = load_settings(**{"latent_weight": 2.0, **overrides})  # the store's terms
    kb = build_knowledge_base(settings)
    if kb.latent is None or not kb.latent.stored_ids():
        print("no latent terms in this store: run `python ingest.py` with the bundled model")
        return 1
    retriever = build_retriever(settings.model_copy(update={"latent_weight": 0.0}), kb)
    weights = [float(w) for w in args.weights.split(",")]
    hits: dict[tuple[float, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for name in TUNING_SETS:
        for item in load_golden(ROOT / "eval" / f"{name}.yaml"):
            if not item.answerable:
                continue
            passages = retriever.retrieve(item.question, groups=reader_groups(item.groups))
            if not passages:
                continue
            terms = partial(kb.embeddings.latent_query, item.question)  # type: ignore[attr-defined]
            for weight in weights:
                first = latent.rerank(passages, terms, kb.latent_terms, weight)[0]
                for key in ((weight, name, item.lang), (weight, "all", item.lang)):
                    hits[key][0] += 1
                    hits[key][1] += is_relevant(first, item.expected)
    for weight in weights:
        overall = {
            lang: f"{hits[weight, 'all', lang][1] / hits[weight, 'all', lang][0]:.3f}"
            for lang in ("de", "en")
        }
        print(f"weight {weight:<4} recall@1 {overall}")
    for name in TUNING_SETS:
        low, high = weights[0], weights[-1]
        row = "  ".join(
            f"{lang} {hits[low, name, lang][1]} -> {hits[high, name, lang][1]} "
            f"of {hits[low, name, lang][0]}"
            for lang in ("de", "en")
        )
        print(f"    {name:<14} weight {low} -> {high}: {row}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
