"""Structure-aware chunks: sections by heading, long sections split at paragraphs and bullets;
and each chunk's units (sentences, bullets, table rows), which the index searches as well.

Every chunk's page_content starts with one context line, "Title > Section > Subsection", followed by
the passage. The context line is embedded and keyword-indexed with the passage (it carries the
subject a bare bullet list lacks); `passage_text` removes it again for quoting. A unit document
has the same shape, context line and one unit, and names its chunk by the chunk's `chunk_key`:
a question is matched to the sentence that answers it, and answered and cited with its section.
"""

from __future__ import annotations

import hashlib
import re

from langchain_core.documents import Document
from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from assistant.audience import PREFIX as AUDIENCE_PREFIX
from assistant.audience import audience_metadata
from assistant.ingest.documents import SourceDocument
from assistant.ingest.units import split_units

_HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4"), ("#####", "h5")]
SECTION_SEPARATOR = " > "


def split_document(doc: SourceDocument, chunk_size: int, chunk_overlap: int) -> list[Document]:
    """Chunks of one document, in reading order, each with source, title, section path and page."""
    sections = MarkdownHeaderTextSplitter(headers_to_split_on=_HEADERS, strip_headers=True)
    # Paragraphs first, then lines (each bullet is a line), then sentences, then words.
    sizer = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        separators=["\n\n", "\n", r"(?<=[.!?])\s+", " ", ""],
        is_separator_regex=True,
    )
    chunks: list[Document] = []
    carried: dict[str, str] = {}
    readers = audience_metadata(doc.metadata.get("audience"), doc.source)
    # A single "# heading" is the document's own title line, not a section.
    single_h1 = sum(len(re.findall(r"^# ", text, re.M)) for _, text in doc.pages) <= 1
    for page, text in doc.pages:
        # A section that runs over a page break keeps its heading path on the next page.
        prefix = "".join(f"{'#' * int(k[1])} {v}\n" for k, v in sorted(carried.items()))
        for section in sections.split_text(prefix + "\n" + text):
            carried = {k: v for k, v in section.metadata.items() if k.startswith("h")}
            # The splitter joins paragraphs with "  \n"; restore the blank line between them.
            body = section.page_content.replace("  \n", "\n\n").strip()
            if not body:
                continue
            path = _section_path(doc.title, carried, drop_h1=single_h1)
            context = SECTION_SEPARATOR.join([doc.title, path]) if path else doc.title
            for piece in sizer.split_text(body):
                metadata = {
                    **doc.metadata,
                    "source": doc.source,
                    "format": doc.format,
                    "section": path,
                    "chunk": len(chunks),
                    **readers,
                }
                if page is not None:
                    metadata["page"] = page
                content = f"{context}\n{piece.strip()}"
                metadata["chunk_key"] = chunk_key(doc.source, len(chunks), content)
                chunks.append(Document(page_content=content, metadata=metadata))
    return chunks


def chunk_key(source: str, index: int, content: str) -> str:
    """A chunk's stable name, known before it is stored (its units refer to it)."""
    return hashlib.sha256(f"{source}\n{index}\n{content}".encode()).hexdigest()[:24]


# Metadata a unit carries over from its chunk: what the index filters and ranks on.
_UNIT_FIELDS = ("source", "language", "section", "title")


def unit_documents(chunks: list[Document]) -> list[Document]:
    """The units of every chunk, each as "context line + unit" with its chunk's key, position,
    kind and block, and the chunk's audience flags (so the audience filter applies to units)."""
    units = []
    for chunk in chunks:
        context, _, passage = chunk.page_content.partition("\n")
        shared = {k: chunk.metadata[k] for k in _UNIT_FIELDS if k in chunk.metadata}
        shared |= {k: v for k, v in chunk.metadata.items() if k.startswith(AUDIENCE_PREFIX)}
        for position, unit in enumerate(split_units(passage or context)):
            if unit.furniture:  # searched, it would match every question about the document
                continue
            units.append(
                Document(
                    page_content=f"{context}\n{unit.text}",
                    metadata={
                        **shared,
                        "parent": chunk.metadata["chunk_key"],
                        "position": position,
                        "kind": unit.kind,
                        "block": unit.block,
                    },
                )
            )
    return units


def _section_path(title: str, headers: dict[str, str], drop_h1: bool) -> str:
    h1 = headers.get("h1", "").strip()
    names = [v.strip() for k, v in sorted(headers.items()) if k != "h1"]
    if h1 and not drop_h1 and h1.lower() != title.strip().lower():
        names.insert(0, h1)
    return SECTION_SEPARATOR.join(names)


def passage_text(page_content: str) -> str:
    """The quoted passage of a chunk, without its leading context line."""
    return page_content.split("\n", 1)[1] if "\n" in page_content else page_content
