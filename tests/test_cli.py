"""The command line as a user runs it: real subprocesses on a temp store."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, STORE_MODES, store_env

both_stores = pytest.mark.parametrize("store_mode", STORE_MODES, indirect=True)


def run(args, env, stdin=None, timeout=300):
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def cli_env(small_corpus, tmp_path, store_overrides):
    env = {
        **os.environ,
        "ASSISTANT_CORPUS_DIR": str(small_corpus),
        "ASSISTANT_DATA_DIR": str(tmp_path / "data"),
        **store_env(store_overrides),
    }
    env.pop("ASSISTANT_EMBEDDING_BACKEND", None)
    return env


@both_stores
def test_ingest_json_summary_and_exit_codes(cli_env, small_corpus):
    first = run(["ingest.py", "--json"], cli_env)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["ok"] and summary["files_seen"] == 5 and len(summary["added"]) == 5
    assert summary["chunks_embedded"] == summary["chunks_total"] > 0

    (small_corpus / "kaputt.pdf").write_bytes(b"%PDF-1.4 truncated")
    second = run(["ingest.py", "--json"], cli_env)
    assert second.returncode == 1
    summary = json.loads(second.stdout)
    assert summary["chunks_embedded"] == 0 and len(summary["skipped"]) == 5
    assert summary["failed"][0]["source"] == "kaputt.pdf"
    assert "PDF" in summary["failed"][0]["reason"]


def test_ingest_text_summary_names_failures(cli_env, small_corpus):
    (small_corpus / "leer.md").write_bytes(b"")
    result = run(["ingest.py"], cli_env)
    assert result.returncode == 1
    assert "FAILED leer.md: empty file" in result.stdout
    assert "Files seen: 6" in result.stdout


@both_stores
def test_ask_json(cli_env):
    result = run(
        ["-m", "assistant", "ask", "Wie lange werden Chatprotokolle aufbewahrt?", "--json"], cli_env
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) >= {"question", "answered", "answer", "citations"}
    assert answer["answered"] is True
    first = answer["citations"][0]
    assert set(first) >= {"n", "source", "title", "section", "page", "text", "score"}
    assert first["n"] == 1 and first["source"] == "chatprotokolle.pdf" and first["page"] == 2
    assert "30 Tage" in first["text"] and "[1]" in answer["answer"]


def test_ask_reads_questions_from_stdin(cli_env):
    questions = (
        "Wer pflegt die Trainingsdatensätze?\n\nHow often is the espresso machine descaled?\n   \n"
    )
    result = run(["-m", "assistant", "ask", "--json"], cli_env, stdin=questions)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["question"] for a in lines] == [
        "Wer pflegt die Trainingsdatensätze?",
        "How often is the espresso machine descaled?",
    ]
    assert lines[0]["citations"][0]["source"] == "rollen/datenkurator.docx"
    assert lines[1]["citations"][0]["source"] == "coffee.html"


def test_ask_rejects_empty_question(cli_env):
    result = run(["-m", "assistant", "ask", "   ", "--json"], cli_env)
    assert result.returncode == 2
    assert json.loads(result.stdout)["error"] == "question is empty"
