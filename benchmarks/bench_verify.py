"""Citation verification: calibration of its thresholds and its cost per answer.

Not a test: it measures and prints. Run from the repo root:

    .venv/bin/python benchmarks/bench_verify.py

The corpus is ingested into a temporary store. For every answerable question of eval/golden.yaml
the top passage P of the retrieved ones is the cited passage, and:

- supported claims: sentences of P, verbatim and "paraphrased" (every third content word dropped,
  the words reordered), as an LLM would restate them;
- unsupported claims (hard negatives): sentences of the *other* retrieved passages of the same
  question, cited as if they came from P: same topic, different statement.

It prints, for the embedding similarity and the word-overlap signal, how many of each kind a
threshold accepts, marks the configured thresholds (ASSISTANT_MIN_SUPPORT, _OVERLAP), and the
verification time per answer (a four-sentence answer citing two passages), p50/p95 in ms.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"

import random  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from assistant.answering.generation import Verifier  # noqa: E402
from assistant.answering.pipeline import build_assistant  # noqa: E402
from assistant.config import load_settings  # noqa: E402
from assistant.evaluation.harness import load_golden  # noqa: E402
from assistant.ingest.corpus import ingest_corpus  # noqa: E402
from assistant.ingest.units import split_units  # noqa: E402
from assistant.search.lexical import words  # noqa: E402


def paraphrase(sentence: str, rng: random.Random) -> str:
    """Drop every third longer word and shuffle the rest a little."""
    kept = [w for i, w in enumerate(sentence.split()) if len(w) < 5 or i % 3 != 2]
    for i in range(0, len(kept) - 1, 4):
        kept[i], kept[i + 1] = kept[i + 1], kept[i]
    return " ".join(kept)


def main() -> None:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(REPO / "corpus", corpus)
        settings = load_settings(_env_file=None, corpus_dir=corpus, data_dir=Path(tmp) / "data")
        assistant = build_assistant(settings)
        print("ingesting the corpus into a temporary store ...", file=sys.stderr)
        ingest_corpus(assistant.retriever.kb, corpus)
        retriever = assistant.retriever
        verifier = Verifier(
            retriever.kb.embeddings, retriever.kb.vectors, settings, retriever.glossary
        )

        rows = {"verbatim": [], "paraphrased": [], "unsupported": []}
        timings = []
        for item in load_golden(REPO / "eval" / "golden.yaml"):
            if not item.answerable:
                continue
            passages = retriever.retrieve(item.question, k=5)
            if len(passages) < 2:
                continue
            cited = passages[0]
            vector = retriever.kb.vectors([cited.id])[cited.id]
            own = [u.text for u in split_units(cited.text) if len(words(u.text)) >= 5][:3]
            other = [
                u
                for p in passages[1:]
                if p.section != cited.section
                for u in (x.text for x in split_units(p.text))
                if len(words(u)) >= 5 and u not in cited.text
            ][:3]
            for kind, sentences in (
                ("verbatim", own),
                ("paraphrased", [paraphrase(s, rng) for s in own]),
                ("unsupported", other),
            ):
                for s in sentences:
                    overlap = verifier.overlap(s, cited.content)
                    q = np.asarray(retriever.kb.embeddings.embed_query(s), dtype=np.float32)
                    cosine = float(q @ vector / (np.linalg.norm(q) * np.linalg.norm(vector)))
                    rows[kind].append((cosine, overlap))
            # cost: a four-sentence answer, two from each of the first two passages
            second = [u.text for u in split_units(passages[1].text)][:2]
            answer = " ".join(
                [f"{paraphrase(s, rng)} [1]." for s in own[:2]]
                + [f"{paraphrase(s, rng)} [2]." for s in second]
            )
            start = time.perf_counter()
            verifier.verify(answer, passages[:2])
            timings.append((time.perf_counter() - start) * 1000)

    def accepted(kind: str, cos_t: float | None, ov_t: float | None) -> float:
        values = rows[kind]
        ok = [
            (cos_t is not None and c >= cos_t) or (ov_t is not None and o >= ov_t)
            for c, o in values
        ]
        return sum(ok) / len(ok) if ok else float("nan")

    n = {k: len(v) for k, v in rows.items()}
    print(f"pairs: {n}")
    print("\nembedding similarity alone (share accepted)")
    print(f"{'threshold':>10} {'verbatim':>9} {'paraphr.':>9} {'unsupp.':>9}")
    for t in np.arange(0.80, 0.925, 0.01):
        mark = " <- ASSISTANT_MIN_SUPPORT" if abs(t - settings.min_support) < 1e-6 else ""
        print(
            f"{t:>10.2f} {accepted('verbatim', t, None):>9.2f} "
            f"{accepted('paraphrased', t, None):>9.2f} {accepted('unsupported', t, None):>9.2f}{mark}"
        )
    print("\nword overlap alone (share accepted)")
    for t in (0.3, 0.4, 0.5, 0.6, 0.7):
        mark = (
            " <- ASSISTANT_MIN_SUPPORT_OVERLAP"
            if abs(t - settings.min_support_overlap) < 1e-6
            else ""
        )
        print(
            f"{t:>10.2f} {accepted('verbatim', None, t):>9.2f} "
            f"{accepted('paraphrased', None, t):>9.2f} {accepted('unsupported', None, t):>9.2f}{mark}"
        )
    both = (settings.min_support, settings.min_support_overlap)
    print(
        f"\nconfigured rule (cosine >= {both[0]} or overlap >= {both[1]}): "
        f"verbatim {accepted('verbatim', *both):.2f}, paraphrased {accepted('paraphrased', *both):.2f}, "
        f"unsupported {accepted('unsupported', *both):.2f}"
    )
    t = np.array(timings)
    print(
        f"\nverification per answer (4 sentences, 2 passages, n={len(t)}): "
        f"p50 {np.percentile(t, 50):.1f} ms, p95 {np.percentile(t, 95):.1f} ms, mean {t.mean():.1f} ms"
    )


if __name__ == "__main__":
    main()
