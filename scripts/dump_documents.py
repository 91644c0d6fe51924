"""Write each corpus document's text, as the loaders extract it, to one .txt file per document.

    .venv/bin/python scripts/dump_documents.py OUT_DIR [--corpus corpus]

What a question-set writer reads (eval/WRITING.md): the text the assistant indexes, so every
`contains` snippet copied from it can be found in the stored chunks. Each file starts with the
document's source path, title and audience; PDF pages are marked.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.ingest.documents import discover, load_document  # noqa: E402

MAX_BYTES = 50_000_000


def dump(corpus: Path, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in discover(corpus):
        doc = load_document(path, corpus, max_bytes=MAX_BYTES)
        header = (
            f"# Document: {doc.source}  (title: {doc.title}; "
            f"audience: {doc.metadata.get('audience')})\n"
        )
        pages = [(f"\n--- page {page} ---\n" if page else "\n") + text for page, text in doc.pages]
        target = out / (doc.source.replace("/", "__") + ".txt")
        target.write_text(header + "".join(pages), encoding="utf-8")
        written.append(target)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    args = parser.parse_args()
    for target in dump(args.corpus, args.out):
        print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
