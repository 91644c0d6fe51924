"""Command line: `ingest`, `ask`, `eval` (python -m assistant ...; python ingest.py is `ingest`)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from assistant.answering.pipeline import QuestionError, build_knowledge_base
from assistant.config import Settings, load_settings
from assistant.evaluation.harness import QUESTION_SETS
from assistant.ingest.corpus import IngestReport, ingest_corpus
from assistant.services import build_services
from assistant.store.embeddings import EmbeddingError
from assistant.store.locks import IngestBusyError


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    if getattr(args, "corpus", None):
        overrides["corpus_dir"] = Path(args.corpus)
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    settings = load_settings(**overrides)
    configure_logging(settings)
    return settings


def configure_logging(settings: Settings) -> None:
    """Log at the configured level; libraries that chatter at INFO/DEBUG only warn."""
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("bm25s", "chromadb", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_ingest(settings: Settings, show_progress: bool = True) -> IngestReport:
    """Ingest settings.corpus_dir with a progress bar over the chunks."""
    kb = build_knowledge_base(settings)
    bar = tqdm(total=0, unit="chunk", desc="Embedding", disable=not show_progress, file=sys.stderr)

    def on_total(total: int) -> None:
        bar.total = total
        bar.refresh()

    try:
        return ingest_corpus(kb, settings.corpus_dir, progress=bar.update, on_total=on_total)
    finally:
        bar.close()


def format_report(report: IngestReport) -> str:
    lines = [
        f"Files seen: {report.files_seen}  added: {len(report.added)}  updated: "
        f"{len(report.updated)}  skipped (unchanged): {len(report.skipped)}  deleted: "
        f"{len(report.deleted)}  failed: {len(report.failed)}",
        f"Chunks: {report.chunks_total} in corpus, {report.chunks_embedded} embedded, "
        f"{report.chunks_deleted} deleted  ({report.seconds:.1f} s)",
    ]
    for label, names in (
        ("added", report.added),
        ("updated", report.updated),
        ("deleted", report.deleted),
    ):
        lines.extend(f"  {label}: {name}" for name in names)
    lines.extend(f"  FAILED {f['source']}: {f['reason']}" for f in report.failed)
    if report.latent_mended:
        lines.append(f"  latent terms computed for {report.latent_mended} stored units")
    if report.error:
        lines.append(f"STOPPED: {report.error}")
    return "\n".join(lines)


def cmd_ingest(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        report = run_ingest(settings, show_progress=not args.json)
    except (IngestBusyError, FileNotFoundError) as exc:
        print(f"ingest: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_dict(), ensure_ascii=False) if args.json else format_report(report))
    # 2: the run itself failed (store not writable), as for a busy store; 1: some files failed.
    return 2 if report.error else 0 if report.ok else 1


def _format_answer(answer) -> str:
    lines = [answer.answer]
    if answer.citations:
        lines.append("")
        for c in answer.citations:
            where = " > ".join(x for x in (c.title, c.section) if x)
            page = f", p. {c.page}" if c.page is not None else ""
            lines.append(f"[{c.n}] {where} ({c.source}{page})")
    return "\n".join(lines)


def _ready_assistant(settings: Settings):
    """The assistant over the store; an empty store is filled from the corpus first."""
    services = build_services(settings, ingest="if_empty")
    if services.report.files_seen:
        print("The store was empty: ingested the corpus first.", file=sys.stderr)
        print(format_report(services.report), file=sys.stderr)
    return services.assistant


def cmd_ask(args: argparse.Namespace) -> int:
    settings = _settings(args)
    assistant = _ready_assistant(settings)
    questions = (
        [args.question] if args.question is not None else (line.rstrip("\n") for line in sys.stdin)
    )
    status = 0
    for question in questions:
        if args.question is None and not question.strip():
            continue
        try:
            answer = assistant.ask(question)
        except QuestionError as exc:
            status = 2
            if args.json:
                print(json.dumps({"question": question, "error": str(exc)}, ensure_ascii=False))
            else:
                print(f"ask: {exc}", file=sys.stderr)
            continue
        print(
            json.dumps(answer.as_dict(), ensure_ascii=False)
            if args.json
            else _format_answer(answer)
        )
        sys.stdout.flush()
    return status


def cmd_eval(args: argparse.Namespace) -> int:
    from assistant.evaluation.harness import evaluate, format_results, load_golden
    from assistant.records.regression import load_promoted

    settings = _settings(args)
    assistant = _ready_assistant(settings)
    # Answers admins promoted from thumbs-up feedback (admin page, "Regressionstests") join
    # the first set.
    promoted = [] if args.no_promoted else load_promoted(settings.feedback_url)
    sets = args.golden or [settings.eval_dir / f"{name}.yaml" for name in QUESTION_SETS]
    for i, path in enumerate(sets):
        extra = promoted if i == 0 else []
        results = evaluate(assistant, load_golden(Path(path)) + extra)
        results["golden"] = str(path)
        results["promoted"] = len(extra)
        if args.json:
            print(json.dumps(results, ensure_ascii=False, indent=None if len(sets) > 1 else 2))
        else:
            print(f"Promoted from feedback: {len(extra)}\n{format_results(results)}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m assistant", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--corpus", help="corpus folder (default: ASSISTANT_CORPUS_DIR or corpus/)")
        p.add_argument("--data-dir", help="data folder (default: ASSISTANT_DATA_DIR or data/)")
        p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("ingest", help="ingest the corpus into the store (incremental)")
    common(p)
    p.set_defaults(func=cmd_ingest)
    p = sub.add_parser("ask", help="answer a question (or one per stdin line) with citations")
    p.add_argument("question", nargs="?", help="the question; omitted: read questions from stdin")
    common(p)
    p.set_defaults(func=cmd_ask)
    p = sub.add_parser("eval", help="recall@k, MRR and refusal accuracy on the golden set")
    p.add_argument(
        "--golden",
        nargs="+",
        help="question sets (YAML), each reported on its own (JSON: one object per line when "
        "several); default: every set of ASSISTANT_EVAL_DIR, the tuning sets first",
    )
    p.add_argument(
        "--no-promoted",
        action="store_true",
        help="leave out the answers promoted from feedback (read from the app database)",
    )
    common(p)
    p.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EmbeddingError as exc:
        # An unreachable embedding server: one line, not a traceback; nothing stored changed
        # (a file's new chunks are embedded before its old ones are replaced).
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 2
