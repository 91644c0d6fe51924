"""Check eval/golden.yaml (or another question set) against the corpus.

Every expected passage must name an existing corpus file, and its `contains` snippet must
occur in that file's text as the loaders extract it, compared as the evaluation compares
snippets (case, spacing and table cell borders do not count). Also checks ids,
languages and the answerable/expected pairing, and prints counts per category.

Usage (from the repository root):  python scripts/check_golden.py [--words] [eval/holdout.yaml]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from assistant.evaluation.harness import normalise_snippet  # noqa: E402
from assistant.ingest.documents import load_document  # noqa: E402

CORPUS = REPO_ROOT / "corpus"
GOLDEN = REPO_ROOT / "eval" / "golden.yaml"
MAX_BYTES = 50_000_000


def extract_text(path: Path) -> str:
    """Plain text of one corpus file as the loaders extract it (what the stored chunks hold)."""
    document = load_document(path, CORPUS, max_bytes=MAX_BYTES)
    return "\n".join(text for _, text in document.pages)


def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and not p.name.endswith(".meta.yaml"))


def check(golden: list[dict]) -> list[str]:
    errors: list[str] = []
    texts: dict[str, str] = {}
    seen: set[str] = set()
    for item in golden:
        qid = item.get("id", "?")
        if qid in seen:
            errors.append(f"{qid}: duplicate id")
        seen.add(qid)
        if item.get("lang") not in ("de", "en"):
            errors.append(f"{qid}: lang must be de or en")
        if not str(item.get("question", "")).strip():
            errors.append(f"{qid}: empty question")
        expected = item.get("expected") or []
        if item.get("answerable") is True and not expected:
            errors.append(f"{qid}: answerable but no expected passages")
        if item.get("answerable") is False and expected:
            errors.append(f"{qid}: unanswerable but has expected passages")
        if not isinstance(item.get("answerable"), bool):
            errors.append(f"{qid}: answerable must be true or false")
        for exp in expected:
            source = exp.get("source", "")
            path = CORPUS / source
            if not path.is_file():
                errors.append(f"{qid}: source {source!r} does not exist under corpus/")
                continue
            if source not in texts:
                texts[source] = normalise_snippet(extract_text(path))
            snippet = exp.get("contains")
            if snippet is not None and normalise_snippet(snippet) not in texts[source]:
                errors.append(f"{qid}: {snippet!r} not found in {source}")
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", action="store_true", help="also print corpus word counts")
    parser.add_argument(
        "golden",
        nargs="?",
        type=Path,
        default=GOLDEN,
        help="question set (default: the golden set)",
    )
    args = parser.parse_args(argv)

    if args.words:
        for path in corpus_files():
            words = len(re.findall(r"\w+", extract_text(path)))
            print(f"{words:6d} words  {path.relative_to(CORPUS)}")

    golden = yaml.safe_load(args.golden.read_text(encoding="utf-8"))
    errors = check(golden)
    counts = Counter(
        (q.get("lang"), "answerable" if q.get("answerable") else "unanswerable") for q in golden
    )
    for (lang, kind), n in sorted(counts.items()):
        print(f"{lang} {kind}: {n}")
    covered = Counter(e["source"] for q in golden for e in q.get("expected") or [])
    for path in corpus_files():
        rel = path.relative_to(CORPUS).as_posix()
        print(f"{covered.get(rel, 0):3d} expected passages  {rel}")
        if not covered.get(rel):
            errors.append(f"no question covers {rel}")
    for error in errors:
        print("ERROR", error)
    print(f"{len(golden)} questions, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
