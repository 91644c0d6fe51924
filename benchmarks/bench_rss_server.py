"""The app's memory with a Chroma server (the replica deployment) on a large store: prints figures,
asserts nothing.

bench_scale.py --app measures the app with the embedded store, where Chroma's HNSW indexes of
the chunks and of their units live in the app's own process. Here the same synthetic store (one
that `bench_scale.py --synthetic-cache DIR` kept) is served by `chroma run` in a process of its
own, and the app (benchmarks/scale_app.py, as a replica runs it) talks to it over loopback HTTP:
its RSS and high-water mark after answering every golden question, the server's RSS, and the first
question after another process moved the corpus version marker.

    .venv/bin/python benchmarks/bench_rss_server.py DIR/data-synthetic-50000-0.02-1234
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # the package, and the tests' server starters

import chromadb  # noqa: E402
import yaml  # noqa: E402
from bench_scale import rss_mb  # noqa: E402 (benchmarks/ is the script's own folder)
from servers import ChromaServer  # noqa: E402

from assistant.config import Settings  # noqa: E402
from assistant.store.knowledge_base import VERSION_KEY  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path, help="a synthetic store kept by bench_scale.py")
    args = parser.parse_args()
    golden = yaml.safe_load((REPO / "eval" / "golden.yaml").read_text(encoding="utf-8"))
    questions = [item["question"] for item in golden if isinstance(item, dict)]
    collection = Settings(_env_file=None).collection_name
    with tempfile.TemporaryDirectory(prefix="bench-rss-server-") as tmp:
        root, data = Path(tmp, "server"), Path(tmp, "app-data")
        shutil.copytree(args.store / "chroma", root / "data")  # the server's copy of the store
        data.mkdir()
        shutil.copy2(args.store / "records.sqlite", data / "records.sqlite")
        (qfile := Path(tmp, "questions.json")).write_text(json.dumps(questions), encoding="utf-8")
        server = ChromaServer(root, timeout=600)
        try:
            env = {
                **os.environ,
                "PYTHONPATH": str(REPO),
                "ASSISTANT_CHROMA_URL": server.url,
                "ASSISTANT_COLLECTION_NAME": collection,
            }
            app = subprocess.Popen(
                [sys.executable, str(REPO / "benchmarks" / "scale_app.py"), str(data), str(qfile)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            assert app.stdin and app.stdout
            ready = json.loads(app.stdout.readline())
            server_ready_mb = rss_mb(pid=server.proc.pid)
            # Another process's ingest: the version marker moves on the server.
            client = chromadb.HttpClient(host=server.url)
            stored = client.get_collection(collection)
            marker = {
                **(stored.metadata or {}),
                VERSION_KEY: f"{time.time():.6f}-{uuid.uuid4().hex[:8]}",
            }
            stored.modify(metadata=marker)
            app.stdin.write("changed\n")
            app.stdin.flush()
            changed = json.loads(app.stdout.readline())
            app.stdin.close()
            app.wait(timeout=600)
            server_mb = (server_ready_mb, rss_mb("VmHWM", server.proc.pid))
        finally:
            server.stop()
    print(f"{len(questions)} golden questions, store {args.store.name}, Chroma server {server.url}")
    print(f"  app ready (store opened, index built, first answer): {ready['ready_ms']:,.0f} ms")
    print(f"  app RSS / high-water after every question: {ready['rss_mb']} / {ready['hwm_mb']} MB")
    print(f"  Chroma server RSS / high-water: {server_mb[0]} / {server_mb[1]} MB")
    print(
        f"  first ask after another process's change: {changed['first_ms']} ms, next {changed['next_ms']} ms"
    )
    print(f"  app RSS / high-water after that change: {changed['rss_mb']} / {changed['hwm_mb']} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
