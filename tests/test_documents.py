"""Loaders: every format yields Markdown sections and metadata; every bad file a clear DocumentError."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_pdf
from pypdf import PdfReader, PdfWriter

from assistant.ingest.documents import DocumentError, discover, load_document
from assistant.ingest.tables import layout_text

ROOT = Path(__file__).resolve().parents[1]

MAX = 10_000_000


def load(path, corpus):
    return load_document(path, corpus, max_bytes=MAX)


def test_markdown_front_matter_and_headings(small_corpus):
    doc = load(small_corpus / "reisekosten.md", small_corpus)
    assert doc.source == "reisekosten.md"
    assert doc.format == "markdown"
    assert doc.metadata["title"] == "Reisekosten für KI-Konferenzen"
    assert doc.metadata["owner"] == "Finanzen – Jana Roth"
    assert doc.metadata["effective_date"] == "2025-03-01"  # YAML date kept as ISO text
    assert doc.pages == [(None, doc.pages[0][1])]
    assert "## Erstattung" in doc.pages[0][1]


def test_text_numbered_headings_become_sections(small_corpus):
    doc = load(small_corpus / "prozesse" / "wartung.txt", small_corpus)
    text = doc.pages[0][1]
    assert doc.source == "prozesse/wartung.txt"
    assert "## 1. Zweck" in text
    assert "### 2.1 Vorbereitung" in text
    assert "- Nutzer werden zwei Tage vorher informiert" in text


def test_html_meta_and_boilerplate_removed(small_corpus):
    doc = load(small_corpus / "coffee.html", small_corpus)
    text = doc.pages[0][1]
    assert doc.metadata["title"] == "Coffee Machine Rules"
    assert doc.metadata["owner"] == "Facility – Sam Lee"
    assert doc.metadata["language"] == "en"
    assert "## Cleaning" in text and "- Empty the grounds container daily" in text
    assert "Intranet home" not in text and "footer" not in text and "alert" not in text


def test_docx_styles_map_to_headings_and_bullets(small_corpus):
    doc = load(small_corpus / "rollen" / "datenkurator.docx", small_corpus)
    text = doc.pages[0][1]
    assert doc.metadata["title"] == "Rollenprofil Datenkurator"
    assert doc.metadata["owner"] == "HR – Eva Marx"
    assert "# Rollenprofil Datenkurator" in text
    assert "## Qualifikation" in text
    assert "- Kenntnisse in SQL und Datenqualität" in text


def test_pdf_pages_kept_and_footer_removed(small_corpus):
    doc = load(small_corpus / "chatprotokolle.pdf", small_corpus)
    assert [page for page, _ in doc.pages] == [1, 2, 3]
    assert doc.metadata["title"] == "Aufbewahrung von Chatprotokollen"
    assert "## 2 Aufbewahrung" in doc.pages[1][1]
    assert all("Seite" not in text for _, text in doc.pages)


def test_sidecar_metadata_wins(small_corpus):
    pdf = small_corpus / "chatprotokolle.pdf"
    (small_corpus / "chatprotokolle.pdf.meta.yaml").write_text(
        "title: Chatprotokolle – Aufbewahrung\naudience: [hr, management]\n", encoding="utf-8"
    )
    doc = load(pdf, small_corpus)
    assert doc.metadata["title"] == "Chatprotokolle – Aufbewahrung"
    assert doc.metadata["audience"] == "hr,management"
    assert doc.metadata["owner"] == "Datenschutz – Ole Brandt"  # from the PDF itself


def test_discover_skips_hidden_files_and_sidecars(small_corpus):
    (small_corpus / ".DS_Store").write_bytes(b"junk")
    (small_corpus / "coffee.html.meta.yaml").write_text("owner: x\n", encoding="utf-8")
    names = [p.name for p in discover(small_corpus)]
    assert ".DS_Store" not in names and "coffee.html.meta.yaml" not in names
    assert "coffee.html" in names


# --- bad files ------------------------------------------------------------------------------


def _expect_error(path, corpus, fragment):
    with pytest.raises(DocumentError) as err:
        load(path, corpus)
    assert fragment in str(err.value)


def test_empty_file(tmp_path):
    (tmp_path / "leer.md").write_bytes(b"")
    _expect_error(tmp_path / "leer.md", tmp_path, "empty file")


def test_unsupported_type(tmp_path):
    (tmp_path / "tabelle.xlsx").write_bytes(b"PK\x03\x04")
    _expect_error(tmp_path / "tabelle.xlsx", tmp_path, "unsupported file type '.xlsx'")


def test_invalid_utf8(tmp_path):
    (tmp_path / "alt.txt").write_bytes("Gr\u00fc\u00dfe".encode("latin-1") + b" aus Hamburg")
    _expect_error(tmp_path / "alt.txt", tmp_path, "not valid UTF-8")


def test_binary_content_in_text_file(tmp_path):
    (tmp_path / "bild.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    _expect_error(tmp_path / "bild.md", tmp_path, "binary content")


def test_file_over_size_limit(tmp_path):
    (tmp_path / "gross.txt").write_text("x" * 2000, encoding="utf-8")
    with pytest.raises(DocumentError, match="above the limit"):
        load_document(tmp_path / "gross.txt", tmp_path, max_bytes=1000)


def test_broken_front_matter(tmp_path):
    (tmp_path / "kaputt.md").write_text("---\ntitle: [unclosed\n---\n# Text\n", encoding="utf-8")
    _expect_error(tmp_path / "kaputt.md", tmp_path, "front matter is not valid YAML")


def test_corrupt_pdf(tmp_path):
    write_pdf(tmp_path / "ok.pdf")
    data = (tmp_path / "ok.pdf").read_bytes()
    (tmp_path / "kaputt.pdf").write_bytes(data[: len(data) // 3])
    _expect_error(tmp_path / "kaputt.pdf", tmp_path, "PDF")


def test_not_a_pdf(tmp_path):
    (tmp_path / "brief.pdf").write_text("Dies ist kein PDF, nur Text.", encoding="utf-8")
    _expect_error(tmp_path / "brief.pdf", tmp_path, "corrupt or unreadable PDF")


def test_encrypted_pdf(tmp_path):
    write_pdf(tmp_path / "ok.pdf")
    writer = PdfWriter(clone_from=PdfReader(tmp_path / "ok.pdf"))
    writer.encrypt(user_password="geheim", algorithm="AES-128")
    with open(tmp_path / "geheim.pdf", "wb") as handle:
        writer.write(handle)
    _expect_error(tmp_path / "geheim.pdf", tmp_path, "encrypted")


def test_pdf_without_text_layer(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")  # a "scan": drawing, no text
    pdf.output(str(tmp_path / "scan.pdf"))
    _expect_error(tmp_path / "scan.pdf", tmp_path, "no text layer")


def test_a_pdf_table_reads_as_rows_and_prose_as_before():
    """The retention table of the privacy rules' PDF: pypdf's plain text ran each row's cells
    together and put wrapped cells on lines of their own; its layout text keeps the columns,
    so every row is one Markdown row with its wrapped cells joined."""
    doc = load(ROOT / "corpus" / "richtlinien" / "datenschutz-ki-tools.pdf", ROOT / "corpus")
    text = "\n".join(t for _, t in doc.pages)
    assert "| Daten | Speicherdauer | Löschung durch |" in text
    assert "| NordGPT: Chatverläufe | 30 Tage nach der letzten Nachricht | automatisch |" in text
    assert (
        "| KI-Rollen-Assistent: Fragen und Feedback (pseudonymisiert) | 90 Tage | automatisch |"
        in text
    )
    assert "Es gelten folgende Fristen:" in text  # the prose around it is unchanged
    assert "Einzelne Chats können Sie jederzeit selbst löschen." in text


def test_columns_of_layout_text_become_rows_and_a_prose_line_ends_the_table():
    layout = (
        "Daten                 Speicherdauer          Löschung\n"
        "                                             durch\n"
        "\n"
        "Chatverläufe          30 Tage nach der       automatisch\n"
        "                      letzten Nachricht\n"
        "Protokolle ohne       90 Tage                automatisch\n"
        "Inhalte\n"
        "\n"
        "Einzelne Chats können Sie jederzeit selbst löschen, auch vor Ablauf.\n"
        "Ein Satz   mit weiten   Lücken, aber nur einer Zeile."
    )
    assert [line for line in layout_text(layout).splitlines() if line] == [
        "| Daten | Speicherdauer | Löschung durch |",
        "|---|---|---|",
        "| Chatverläufe | 30 Tage nach der letzten Nachricht | automatisch |",
        "| Protokolle ohne Inhalte | 90 Tage | automatisch |",
        "Einzelne Chats können Sie jederzeit selbst löschen, auch vor Ablauf.",
        "Ein Satz mit weiten Lücken, aber nur einer Zeile.",
    ]


def test_two_columns_of_prose_side_by_side_are_no_table():
    """A two-column page's layout text looks like a table of two columns; its first line is
    pieces of sentences, not a header, so its lines stay text."""
    layout = (
        "Die Einführung von KI verlangt klare      Der Betriebsrat wird früh beteiligt,\n"
        "Regeln für alle Beschäftigten, damit      damit Fragen der Leistungskontrolle\n"
        "niemand Kundendaten in private Konten     vor dem Pilot geklärt sind und die\n"
        "kopiert und jede Nutzung nachvollziehbar  Beschäftigten wissen, was gilt.\n"
    )
    assert "|" not in layout_text(layout)
