"""What only the shared store (a Chroma server plus PostgreSQL) has: the token sent to Chroma, locks
shared by every machine, refresh without reopening, tables created by processes starting together."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from conftest import ROOT, make_settings, write_markdown
from servers import TokenGate

from assistant.admin.uploads import DocumentAdmin
from assistant.ingest.corpus import ingest_corpus
from assistant.records.audit import AuditLog
from assistant.records.feedback import FeedbackStore
from assistant.records.regression import RegressionSet
from assistant.records.retention import purge_feedback_text
from assistant.store.chroma import StoreUnavailableError
from assistant.store.database import advisory_lock, make_engine
from assistant.store.knowledge_base import KnowledgeBase
from assistant.store.locks import IngestBusyError

pytestmark = pytest.mark.parametrize("store_mode", ["server"], indirect=True)


def machine(tmp_path, name, corpus, store, embeddings) -> KnowledgeBase:
    """The shared store as one machine (its own data dir) opens it."""
    return KnowledgeBase(make_settings(tmp_path / name, corpus, **store), embeddings)


def test_token_goes_to_the_chroma_server_as_bearer_header(
    tmp_path, small_corpus, chroma_server, store_overrides, shared_embeddings
):
    gate = TokenGate(chroma_server.url, "s3cret-token")
    try:
        shared = {**store_overrides, "chroma_url": gate.url}
        with pytest.raises(StoreUnavailableError, match="not usable: .*auth.*CHROMA_TOKEN"):
            machine(tmp_path, "a", small_corpus, shared, shared_embeddings)
        assert gate.refused > 0 and gate.passed == 0

        with_token = {**shared, "chroma_token": "s3cret-token"}
        kb = machine(tmp_path, "b", small_corpus, with_token, shared_embeddings)
        report = ingest_corpus(kb, small_corpus)
        assert report.ok and kb.count() == report.chunks_total > 0
        assert gate.passed > 0
    finally:
        gate.close()


def test_ingest_lock_is_shared_by_every_machine(
    tmp_path, small_corpus, store_overrides, shared_embeddings
):
    """Two processes with their own data dirs (two machines) writing one store exclude each other."""
    first = machine(tmp_path, "one", small_corpus, store_overrides, shared_embeddings)
    second = machine(tmp_path, "two", small_corpus, store_overrides, shared_embeddings)
    with first.locks.ingest(), pytest.raises(IngestBusyError, match="another ingest is running"):
        ingest_corpus(second, small_corpus)
    assert ingest_corpus(second, small_corpus).ok  # released when the holder is done
    assert not (tmp_path / "one" / "data" / "ingest.lock").exists()


def test_a_killed_ingest_leaves_no_lock_behind(tmp_path, small_corpus, store_overrides):
    """The advisory lock dies with the connection of a process killed while holding it."""
    settings = make_settings(tmp_path, small_corpus, **store_overrides)
    name = f"assistant/ingest/{settings.collection_name}"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from assistant.store.database import advisory_lock, make_engine\n"
            "with advisory_lock(make_engine(sys.argv[1]), sys.argv[2]):\n"
            "    print('locked', flush=True)\n"
            "    time.sleep(600)\n",
            settings.database_url,
            name,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        engine = make_engine(settings.database_url)
        with advisory_lock(engine, name, wait=False) as got:
            assert not got
        holder.kill()
        holder.wait(30)
        with advisory_lock(engine, name, wait=True) as got:  # would hang if the lock stayed
            assert got
    finally:
        holder.kill()
        holder.wait(30)


def test_refresh_rereads_the_version_without_reopening_the_client(
    tmp_path, small_corpus, store_overrides, shared_embeddings
):
    reader = machine(tmp_path, "reader", small_corpus, store_overrides, shared_embeddings)
    writer = machine(tmp_path, "writer", small_corpus, store_overrides, shared_embeddings)
    client, before = reader.client, reader.version()
    ingest_corpus(writer, small_corpus)
    # The server serves the writer's vectors at once; only the version marker is stale here.
    assert reader.count() == writer.count() > 0
    assert reader.version() == before != writer.version()
    assert reader.refresh_if_changed() is True
    assert reader.version() == writer.version() and reader.client is client
    assert reader.refresh_if_changed() is False

    write_markdown(small_corpus / "neu.md")
    ingest_corpus(writer, small_corpus)
    assert reader.refresh_if_changed() is True and reader.version() == writer.version()


def test_replicas_starting_together_create_the_tables_once(
    tmp_path, small_corpus, store_overrides, shared_embeddings
):
    """Processes that start at once on an empty database all open it (nobody's CREATE TABLE
    fails on another's)."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start(n: int) -> None:
        try:
            kb = machine(tmp_path, f"r{n}", small_corpus, store_overrides, shared_embeddings)
            barrier.wait()  # then every process creates the app's tables at once
            FeedbackStore(kb.settings.app_db_url)
            AuditLog(kb.settings.app_db_url, 30)
            DocumentAdmin(kb.settings, kb)
            engine = make_engine(kb.settings.app_db_url)
            RegressionSet(engine)
            purge_feedback_text(engine, 30)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    settings = make_settings(tmp_path, small_corpus, **store_overrides)
    assert FeedbackStore(settings.app_db_url).all() == []
