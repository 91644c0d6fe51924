"""Bad input and faults during ingestion: each gives a clear error, and nothing stored is lost.

Hostile files (decompression bombs, circular PDFs, huge sparse files, paths out of the corpus, odd
file names) and broken runs (kill -9, two ingests at once, a read-only or full store). The ids of
a clean ingest into a fresh store are the yardstick: chunk ids are content hashes, so a store that
holds exactly those ids holds exactly the right chunks, none twice and none missing.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
import unicodedata
import zipfile
import zlib
from pathlib import Path

import pytest
import sqlalchemy
from conftest import REAL_CORPUS, ROOT, make_settings, write_markdown
from langchain_core.embeddings import DeterministicFakeEmbedding

from assistant import cli
from assistant.ingest import formats
from assistant.ingest.corpus import ingest_corpus
from assistant.ingest.documents import SIDECAR_SUFFIX, DocumentError, discover, load_document
from assistant.ingest.units import split_units
from assistant.store.knowledge_base import KnowledgeBase
from assistant.store.latent import TERMS_TABLE

MAX = 50_000_000  # the default ASSISTANT_MAX_FILE_MB, in bytes


def load(path: Path, corpus: Path, max_bytes: int = MAX):
    return load_document(path, corpus, max_bytes=max_bytes)


def ids_of(kb: KnowledgeBase) -> list[str]:
    return kb.collection.get(include=[])["ids"]


def fake_kb(tmp: Path, corpus: Path) -> KnowledgeBase:
    """A store with stand-in vectors: for checks on which chunks are stored, not on retrieval
    (chunk ids hash the content and metadata, never the vector)."""
    return KnowledgeBase(make_settings(tmp, corpus), DeterministicFakeEmbedding(size=384))


def clean_ids(tmp: Path, corpus: Path) -> set[str]:
    """The ids a clean ingest of corpus into a fresh store produces."""
    kb = fake_kb(tmp, corpus)
    assert ingest_corpus(kb, corpus).ok
    return set(ids_of(kb))


# --- hand-made PDFs ------------------------------------------------------------------------------


def build_pdf(objects: dict[int, bytes], root: int = 1) -> bytes:
    """A PDF file from numbered object bodies, with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    xref, size = len(out), max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += (
            b"%010d 00000 n \n" % offsets[number]
            if number in offsets
            else b"0" * 10 + b" 65535 f \n"
        )
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, root, xref)
    return bytes(out)


def stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n%s\nendstream" % (len(data), extra, data)


FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
HELLO = stream(b"BT /F1 12 Tf 72 720 Td (Hallo Welt) Tj ET")


def page(contents: int, resources: bytes = b"<< /Font << /F1 5 0 R >> >>") -> bytes:
    """A page below the page-tree root (object 2) drawing the content stream `contents`."""
    box = b"/MediaBox [0 0 612 792]"
    return b"<< /Type /Page /Parent 2 0 R %s /Contents %d 0 R /Resources %s >>" % (
        box,
        contents,
        resources,
    )


def flate_bomb(inflated_mb: int) -> bytes:
    """One page whose content stream is a few hundred KB of zlib that inflates to inflated_mb MB
    (a line of text, then spaces); compressed piecewise, so the test never holds it inflated."""
    packer = zlib.compressobj(9)
    parts = [packer.compress(b"BT /F1 12 Tf 72 720 Td (Hallo) Tj ET\n")]
    block = b" " * 1_000_000
    parts += [packer.compress(block) for _ in range(inflated_mb)]
    parts.append(packer.flush())
    return build_pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            3: page(contents=4),
            4: stream(b"".join(parts), b"/Filter /FlateDecode "),
            5: FONT,
        }
    )


# --- decompression bombs -------------------------------------------------------------------------


def test_pdf_decompression_bomb_refused_without_inflating_it(tmp_path, kb_factory):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    bomb = corpus / "bombe.pdf"
    bomb.write_bytes(flate_bomb(inflated_mb=200))
    assert bomb.stat().st_size < 1_000_000  # small on disk: the size limit cannot catch it
    write_markdown(corpus / "regel.md")

    tracemalloc.start()
    try:
        with pytest.raises(DocumentError, match=r"PDF stream inflates beyond 50\.0 MB") as err:
            load(bomb, corpus)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "decompression bomb" in str(err.value)
    # pypdf stops at the 50 MB cap; the 200 MB were never allocated.
    assert peak < 150_000_000, f"peak {peak / 1e6:.0f} MB while refusing the bomb"

    report = ingest_corpus(kb_factory(corpus), corpus)
    assert report.added == ["regel.md"]
    assert [f["source"] for f in report.failed] == ["bombe.pdf"]
    assert "inflates beyond" in report.failed[0]["reason"]


def test_pdf_text_adding_up_beyond_the_limit_is_refused(tmp_path):
    """Each page stays under the stream cap, but their text together exceeds the size limit."""
    objects = {1: b"<< /Type /Catalog /Pages 2 0 R >>", 5: FONT}
    kids = []
    for i in range(3):
        objects[10 + 2 * i] = page(contents=11 + 2 * i)
        text = zlib.compress(b"BT /F1 12 Tf 72 720 Td (" + b"Wort " * 80_000 + b") Tj ET")
        objects[11 + 2 * i] = stream(text, b"/Filter /FlateDecode ")
        kids.append(b"%d 0 R" % (10 + 2 * i))
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count 3 >>" % b" ".join(kids)
    (tmp_path / "lang.pdf").write_bytes(build_pdf(objects))
    with pytest.raises(DocumentError, match=r"PDF text inflates beyond 1\.0 MB"):
        load(tmp_path / "lang.pdf", tmp_path, max_bytes=1_000_000)


def test_docx_zip_bomb_refused(tmp_path):
    bomb = tmp_path / "bombe.docx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w") as part:
            for _ in range(20):
                part.write(b" " * 1_000_000)
    assert bomb.stat().st_size < 200_000
    with pytest.raises(DocumentError, match=r"DOCX inflates to 20\.0 MB, above the limit of 5\.0"):
        load(bomb, tmp_path, max_bytes=5_000_000)


@pytest.mark.parametrize(
    "part", ["word/document.xml", "[Content_Types].xml", "docProps/core.xml", "word/styles.xml"]
)
def test_docx_with_a_broken_xml_part_is_a_clear_error(tmp_path, part):
    from docx import Document

    good = tmp_path / "gut.docx"
    document = Document()
    document.core_properties.title = "Gut"
    document.add_heading("Abschnitt", level=1)
    document.add_paragraph("Ein Absatz.")
    document.save(str(good))
    broken = tmp_path / "kaputt.docx"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(broken, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, b"<w:document><unclosed>" if info.filename == part else data)
    assert load(good, tmp_path).title == "Gut"
    with pytest.raises(DocumentError, match="corrupt or unreadable DOCX: "):
        load(broken, tmp_path)


def test_front_matter_date_that_does_not_exist_is_a_clear_error(tmp_path):
    (tmp_path / "datum.md").write_text(
        "---\ntitle: Datum\neffective_date: 2025-02-30\n---\n# T\n\nText.\n", encoding="utf-8"
    )
    with pytest.raises(DocumentError, match="front matter: a value written as a date is no real"):
        load(tmp_path / "datum.md", tmp_path)


def test_deeply_nested_html_is_read_whole(tmp_path):
    """Blocks inside unclosed inline elements, 3,000 deep: each block's text once, in order
    (one walk; a walk up from every block took minutes at this depth)."""
    page = "<html><body>" + "<span><p>Absatz {}</p>" * 3000 + "</span>" * 3000 + "</body></html>"
    (tmp_path / "tief.html").write_text(page.replace("{}", "x"), encoding="utf-8")
    nested = "<div><p>eins</p><ul><li>zwei <b>fett</b></li></ul><p>drei</p></div><p>vier</p>"
    (tmp_path / "flach.html").write_text(f"<html><body>{nested}</body></html>", encoding="utf-8")
    (deep,) = [text for _, text in load(tmp_path / "tief.html", tmp_path).pages]
    (flat,) = [text for _, text in load(tmp_path / "flach.html", tmp_path).pages]
    assert deep.count("Absatz x") == 3000
    assert flat.split() == "eins - zwei fett drei vier".split()


def test_yaml_alias_bomb_in_front_matter_refused(tmp_path):
    """351 bytes of front matter whose nested aliases str() would expand to 300 MB."""
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdef", "bcdefg", strict=True):
        levels.append(f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]")
    levels.append(f"version: [{','.join(['*g'] * 9)}]")
    (tmp_path / "bombe.md").write_text(
        "---\ntitle: Bombe\n" + "\n".join(levels) + "\n---\n# Text\n\nInhalt.\n", encoding="utf-8"
    )
    with pytest.raises(DocumentError, match="'version' must be text or a list of texts"):
        load(tmp_path / "bombe.md", tmp_path)
    (tmp_path / "lang.md").write_text(f"---\nowner: {'x' * 1001}\n---\n# T\n\nText.\n")
    with pytest.raises(DocumentError, match="'owner' is longer than 1000 characters"):
        load(tmp_path / "lang.md", tmp_path)


# --- circular PDFs -------------------------------------------------------------------------------

CIRCULAR = {
    "kids contain their own node": {
        2: b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
        3: page(contents=4),
    },
    "two page-tree nodes are each other's kid": {
        2: b"<< /Type /Pages /Kids [6 0 R] /Count 1 >>",
        6: b"<< /Type /Pages /Kids [2 0 R] /Count 1 /Parent 2 0 R >>",
    },
    "parents form a loop": {
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 /Parent 6 0 R >>",
        3: b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>",  # inherits /Resources: walks up
        6: b"<< /Type /Pages /Kids [2 0 R] /Count 1 /Parent 2 0 R >>",
    },
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", CIRCULAR)
def test_pdf_with_circular_references_refused(tmp_path, case):
    objects = {1: b"<< /Type /Catalog /Pages 2 0 R >>", 4: HELLO, 5: FONT, **CIRCULAR[case]}
    (tmp_path / "kreis.pdf").write_bytes(build_pdf(objects))
    with pytest.raises(DocumentError, match="PDF has circular object references"):
        load(tmp_path / "kreis.pdf", tmp_path)


@pytest.mark.timeout(60)
def test_pdf_form_that_draws_itself_keeps_its_text(tmp_path):
    """A form XObject that invokes itself: pypdf skips the repeat, the text is ingested once."""
    resources = b"<< /Font << /F1 5 0 R >> /XObject << /X1 6 0 R >> >>"
    form = b"BT /F1 12 Tf 72 700 Td (Formular) Tj ET /X1 Do"
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: page(contents=4, resources=resources),
        4: stream(b"BT /F1 12 Tf 72 720 Td (Hallo Welt) Tj ET /X1 Do"),
        5: FONT,
        6: stream(
            form, b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources %s " % resources
        ),
    }
    (tmp_path / "form.pdf").write_bytes(build_pdf(objects))
    doc = load(tmp_path / "form.pdf", tmp_path)
    assert doc.pages == [(1, "Hallo Welt Formular")]


# --- huge files ----------------------------------------------------------------------------------


def test_200_mb_sparse_files_refused_before_reading(tmp_path, kb_factory, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("riesig.pdf", "riesig.md"):
        with open(corpus / name, "wb") as handle:
            handle.truncate(200 * 1024 * 1024)
        assert (corpus / name).stat().st_blocks < 100  # sparse: nothing written, nothing to read
    write_markdown(corpus / "regel.md")

    def guarded(real):
        def loader(path: Path, max_bytes: int):
            assert "riesig" not in path.name, f"{path.name} was read despite its size"
            return real(path, max_bytes)

        return loader

    for suffix, (fmt, real) in list(formats.LOADERS.items()):
        monkeypatch.setitem(formats.LOADERS, suffix, (fmt, guarded(real)))
    report = ingest_corpus(kb_factory(corpus), corpus)
    assert report.added == ["regel.md"]
    failed = {f["source"]: f["reason"] for f in report.failed}
    assert set(failed) == {"riesig.pdf", "riesig.md"}
    for reason in failed.values():
        assert reason == "file is 209.7 MB, above the limit of 50.0 MB (ASSISTANT_MAX_FILE_MB)"


def test_huge_sidecar_refused_before_reading(tmp_path):
    write_markdown(tmp_path / "regel.md")
    with open(tmp_path / f"regel.md{SIDECAR_SUFFIX}", "wb") as handle:
        handle.truncate(200 * 1024 * 1024)
    with pytest.raises(DocumentError, match=r"metadata file regel.md.meta.yaml is 209\.7 MB"):
        load(tmp_path / "regel.md", tmp_path)


def test_file_that_cannot_be_read_is_a_clear_error(tmp_path, monkeypatch):
    write_markdown(tmp_path / "regel.md")

    def denied(path, *args):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setitem(formats.LOADERS, ".md", ("markdown", denied))
    with pytest.raises(DocumentError, match="cannot read the file: Permission denied"):
        load(tmp_path / "regel.md", tmp_path)
    with pytest.raises(DocumentError, match="cannot read the file: No such file or directory"):
        load(tmp_path / "weg.txt", tmp_path)  # deleted between discovery and loading


# --- paths and file names ------------------------------------------------------------------------


@pytest.fixture
def corpus_and_outside(tmp_path: Path) -> tuple[Path, Path]:
    corpus, outside = tmp_path / "corpus", tmp_path / "outside"
    write_markdown(corpus / "regel.md")
    write_markdown(outside / "geheim.md")
    return corpus, outside


def test_paths_out_of_the_corpus_refused(corpus_and_outside):
    corpus, outside = corpus_and_outside
    (corpus / "link.md").symlink_to(outside / "geheim.md")
    (corpus / "regel.md.meta.yaml").symlink_to(outside / "geheim.md")
    cases = {
        corpus / ".." / "outside" / "geheim.md": "contains '..'",
        corpus / "sub" / ".." / "regel.md": "contains '..'",  # even when it stays inside
        outside / "geheim.md": "is outside the corpus folder",
        (outside / "geheim.md").resolve(): "is outside the corpus folder",
        corpus / "link.md": "links to a file outside the corpus folder",
        corpus / "regel.md": "metadata file regel.md.meta.yaml links to a file outside",
    }
    for path, fragment in cases.items():
        with pytest.raises(DocumentError, match=re.escape(fragment)):
            load(path, corpus)


def test_discover_does_not_follow_symlinks_out_of_the_corpus(corpus_and_outside, kb_factory):
    corpus, outside = corpus_and_outside
    (corpus / "link.md").symlink_to(outside / "geheim.md")
    (corpus / "linkdir").symlink_to(outside, target_is_directory=True)
    (corpus / "schleife").symlink_to(corpus, target_is_directory=True)  # a loop
    (corpus / "auch-regel.md").symlink_to(corpus / "regel.md")  # inside: allowed
    assert [p.name for p in discover(corpus)] == ["auch-regel.md", "regel.md"]
    kb = kb_factory(corpus)
    assert ingest_corpus(kb, corpus).ok
    assert kb.stored_sources() == {"auch-regel.md", "regel.md"}


def test_odd_unicode_file_names(tmp_path, kb_factory):
    corpus = tmp_path / "corpus"
    nfd = unicodedata.normalize("NFD", "Übersicht.md")
    names = [
        nfd,
        "Ärger 🎉 Notizen.md",
        "rechnung\u202egpj.md",
        "zwei\nzeilen.md",
        os.fsdecode(b"caf\xe9.md"),  # not UTF-8 on disk
    ]
    for name in names:
        write_markdown(corpus / name)
    # Linux file systems keep byte-different names apart (no Unicode folding).
    assert len(os.listdir(corpus)) == len(names)
    kb = kb_factory(corpus)
    report = ingest_corpus(kb, corpus)

    assert sorted(report.added) == ["Ärger 🎉 Notizen.md", unicodedata.normalize("NFC", nfd)]
    failed = {f["source"]: f["reason"] for f in report.failed}
    assert failed == {
        "rechnung\\u202egpj.md": "file name contains control or bidi characters "
        "(U+202E RIGHT-TO-LEFT OVERRIDE); rename it",
        "zwei\\u000azeilen.md": "file name contains control or bidi characters (U+000A Cc); rename it",
        "caf\\udce9.md": "file name contains control or bidi characters (U+DCE9 Cs); rename it",
    }
    assert all(n.isprintable() for n in kb.stored_sources())
    json.dumps(report.as_dict(), ensure_ascii=False).encode()  # no lone surrogates in the report

    # The decomposed name maps to the same source every run: unchanged, never deleted and re-added.
    again = ingest_corpus(kb, corpus)
    assert not again.added and not again.deleted and again.chunks_embedded == 0

    # A second file whose name only differs in its Unicode form cannot share the source.
    write_markdown(corpus / unicodedata.normalize("NFC", "Übersicht.md"))
    third = ingest_corpus(kb, corpus)
    assert any("same name once Unicode is normalised" in f["reason"] for f in third.failed)
    assert not third.deleted and not third.updated


# --- real ingest processes: kill -9, two at once -------------------------------------------------


@pytest.fixture(scope="module")
def real_subset(tmp_path_factory) -> tuple[Path, set[str]]:
    """The first files of the shipped corpus (a few seconds of embedding), and the ids of a
    clean ingest of them into a fresh store."""
    tmp = tmp_path_factory.mktemp("subset")
    corpus = tmp / "corpus"
    for path in discover(REAL_CORPUS)[:4]:
        for part in (path, path.with_name(path.name + SIDECAR_SUFFIX)):
            if part.exists():
                (corpus / part.relative_to(REAL_CORPUS)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(part, corpus / part.relative_to(REAL_CORPUS))
    return corpus, clean_ids(tmp, corpus)


def cli_env(corpus: Path, data: Path) -> dict[str, str]:
    env = {**os.environ, "ASSISTANT_CORPUS_DIR": str(corpus), "ASSISTANT_DATA_DIR": str(data)}
    env.pop("ASSISTANT_EMBEDDING_BACKEND", None)
    env["OMP_NUM_THREADS"] = "1"
    return env


def start_ingest(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "ingest.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def assert_store_is_clean(tmp: Path, corpus: Path, expected: set[str]) -> None:
    """The store under tmp/data holds exactly the expected chunks, each once, each with a vector,
    and the records list exactly those chunks."""
    kb = fake_kb(tmp, corpus)
    stored = kb.collection.get(include=["embeddings"])
    assert len(stored["ids"]) == len(set(stored["ids"])) == kb.count()
    assert set(stored["ids"]) == expected
    assert all(len(vector) == 384 for vector in stored["embeddings"])
    assert set(kb.records.list_keys()) == expected
    # The chunks' units (sentences, bullets): each recorded once, each naming a stored chunk;
    # a chunk without units holds nothing but furniture (a heading over a figure's title).
    units = kb.unit_store._collection.get(include=["metadatas"])
    assert set(units["ids"]) == set(kb.unit_records.list_keys()) and units["ids"]
    chunks = kb.collection.get(include=["metadatas", "documents"])
    parents = {m["parent"] for m in units["metadatas"]}
    for meta, text in zip(chunks["metadatas"], chunks["documents"], strict=True):
        context, _, passage = text.partition("\n")
        has_content = any(not u.furniture for u in split_units(passage or context))
        assert (meta["chunk_key"] in parents) == has_content, text
    # No latent terms: off by default (ASSISTANT_LATENT_WEIGHT), so not even their table
    # (their mending after a gap: tests/test_latent.py).
    assert not sqlalchemy.inspect(kb.records.engine).has_table(TERMS_TABLE.name)


def wait_for_progress(process: subprocess.Popen, timeout: float = 180) -> None:
    """Wait until the ingest's progress bar (on stderr) shows the first file stored."""
    seen = bytearray()

    def pump() -> None:
        while chunk := os.read(process.stderr.fileno(), 4096):
            seen.extend(chunk)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not re.search(rb"\| *[1-9]\d*/\d+ \[", bytes(seen)):
        assert process.poll() is None, f"ingest ended early: {bytes(seen)[-2000:]!r}"
        assert time.monotonic() < deadline, "no progress from the ingest"
        time.sleep(0.05)


def test_kill_9_mid_ingest_then_ingest_again(real_subset, tmp_path):
    corpus, expected = real_subset
    env = cli_env(corpus, tmp_path / "data")
    first = start_ingest(env)  # text mode: the progress bar on stderr says when a file is stored
    wait_for_progress(first)
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=30) == -signal.SIGKILL

    assert (tmp_path / "data" / "ingest.lock").exists()  # left behind; its lock died with it
    # Looked at in a copy: Chroma caches an open store per path and process, and this process
    # must not hold a stale view of the real one when the next ingest writes it.
    shutil.copytree(tmp_path / "data", tmp_path / "killed" / "data")
    partial = set(ids_of(fake_kb(tmp_path / "killed", corpus)))
    assert partial and partial < expected, "the kill should land mid-ingest"

    second = subprocess.run(
        [sys.executable, "ingest.py", "--json"], cwd=ROOT, env=env, capture_output=True, timeout=300
    )
    assert second.returncode == 0, second.stderr.decode()[-2000:]
    assert json.loads(second.stdout)["ok"]
    assert_store_is_clean(tmp_path, corpus, expected)


def test_two_ingests_at_once(real_subset, tmp_path):
    corpus, expected = real_subset
    env = cli_env(corpus, tmp_path / "data")  # a fresh data dir: both also create the store
    runs = [start_ingest(env, "--json") for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    codes = [run.returncode for run in runs]
    assert sorted(codes) == [0, 2], [err.decode()[-2000:] for _, err in outputs]
    (winner_out, _), (_, loser_err) = outputs if codes[0] == 0 else outputs[::-1]
    assert json.loads(winner_out)["ok"]
    busy = f"ingest: another ingest is running on {tmp_path / 'data'}; try again when it ends"
    assert loser_err.decode().strip().endswith(busy)
    assert b"Traceback" not in loser_err
    assert_store_is_clean(tmp_path, corpus, expected)


def test_store_creation_is_serialised(small_corpus, tmp_path):
    """While one process creates the store's tables, another waits instead of racing it."""
    data = tmp_path / "data"
    data.mkdir()
    opened = threading.Event()

    def open_store() -> None:
        fake_kb(tmp_path, small_corpus)
        opened.set()

    with open(data / "open.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # as a process creating the store would
        threading.Thread(target=open_store, daemon=True).start()
        assert not opened.wait(1.0)
    assert opened.wait(60)


# --- store read-only or full ---------------------------------------------------------------------


def unprivileged():
    """preexec_fn that makes root honour file modes: it drops the capabilities that override
    them from the bounding set, so the program exec'd next never regains them. None when not root
    (file modes apply anyway)."""
    if os.geteuid() != 0:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, overrides = 24, (1, 2, 3)  # CAP_DAC_OVERRIDE, _DAC_READ_SEARCH, _FOWNER

    def drop() -> None:
        for capability in overrides:
            if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    return drop


def test_read_only_store_answers_but_refuses_to_ingest(small_corpus, tmp_path, kb_factory):
    kb = kb_factory(small_corpus)
    assert ingest_corpus(kb, small_corpus).ok
    before = set(ids_of(kb))
    data = tmp_path / "data"
    md = small_corpus / "reisekosten.md"
    md.write_text(md.read_text(encoding="utf-8").replace("800 Euro", "950 Euro"), encoding="utf-8")
    env = cli_env(small_corpus, data)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            preexec_fn=unprivileged(),
        )

    subprocess.run(["chmod", "-R", "a-w", str(data)], check=True)
    try:
        asked = run(
            "-m", "assistant", "ask", "Wie lange werden Chatprotokolle aufbewahrt?", "--json"
        )
        ingested = run("ingest.py", "--json")
        text = run("ingest.py")
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(data)], check=True)

    assert asked.returncode == 0, asked.stderr[-2000:]
    answer = json.loads(asked.stdout)
    assert answer["answered"] and answer["citations"][0]["source"] == "chatprotokolle.pdf"
    assert "30 Tage" in answer["citations"][0]["text"]

    expected = f"store is read-only: {data}; make it writable for this user to ingest"
    assert ingested.returncode == 2 and json.loads(ingested.stdout)["error"] == expected
    assert text.returncode == 2 and f"STOPPED: {expected}" in text.stdout
    assert "Traceback" not in ingested.stderr + text.stderr
    assert set(ids_of(kb)) == before  # the store is as it was


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_adding_chunks(small_corpus, tmp_path, kb_factory, monkeypatch, capsys):
    kb = kb_factory(small_corpus)
    assert ingest_corpus(kb, small_corpus).ok
    before = kb.collection.get()
    md = small_corpus / "reisekosten.md"
    md.write_text(md.read_text(encoding="utf-8").replace("800 Euro", "950 Euro"), encoding="utf-8")
    monkeypatch.setattr(kb.store, "add_documents", no_space)
    monkeypatch.setattr(cli, "build_knowledge_base", lambda settings: kb)

    status = cli.main(
        ["ingest", "--json", "--corpus", str(small_corpus), "--data-dir", str(kb.settings.data_dir)]
    )
    report = json.loads(capsys.readouterr().out)
    assert status == 2 and not report["ok"]
    assert (
        report["error"]
        == f"no space left on device while writing the store in {kb.settings.data_dir}"
    )

    after = kb.collection.get()
    assert after["ids"] == before["ids"] and after["documents"] == before["documents"]
    hits = kb.store.similarity_search("Welche Konferenzgebühren werden erstattet?", k=3)
    assert any("800 Euro" in hit.page_content for hit in hits)  # the old text still answers


def test_disk_full_after_chunks_were_added_then_space_freed(
    small_corpus, tmp_path, kb_factory, monkeypatch
):
    """The failure lands between Chroma's add and the records' update: the new chunk is stored
    but unrecorded. The old chunks stay; once space is back, the next ingest completes the change."""
    kb = kb_factory(small_corpus)
    assert ingest_corpus(kb, small_corpus).ok
    before = set(ids_of(kb))
    md = small_corpus / "reisekosten.md"
    md.write_text(md.read_text(encoding="utf-8").replace("800 Euro", "950 Euro"), encoding="utf-8")
    record = kb.records.update

    def full_for_new_keys(keys, **kwargs):
        if set(keys) - before:
            no_space()
        record(keys, **kwargs)

    monkeypatch.setattr(kb.records, "update", full_for_new_keys)
    report = ingest_corpus(kb, small_corpus)
    assert report.error.startswith("no space left on device")
    assert set(ids_of(kb)) > before  # the old chunks all still there (plus the unrecorded one)

    monkeypatch.undo()
    assert ingest_corpus(kb, small_corpus).ok
    fresh = tmp_path / "fresh"
    assert set(ids_of(kb)) == clean_ids(fresh, small_corpus)
    assert set(kb.records.list_keys()) == set(ids_of(kb))


# --- interrupted ingests, replayed exactly -------------------------------------------------------


def test_records_of_chunks_the_collection_lost(small_corpus, tmp_path):
    """E.g. killed between Chroma's delete and the records' delete, or chroma/ removed by hand:
    the records still list chunks the collection lacks; without repair their files would count
    as unchanged and stay missing for good."""
    kb = fake_kb(tmp_path, small_corpus)
    assert ingest_corpus(kb, small_corpus).ok
    expected = set(ids_of(kb))
    lost = kb.collection.get(where={"source": "coffee.html"}, include=[])["ids"]
    kb.collection.delete(ids=lost)
    report = ingest_corpus(kb, small_corpus)
    assert report.ok and report.added == ["coffee.html"]
    assert set(ids_of(kb)) == expected == set(kb.records.list_keys())


def test_chunks_the_records_do_not_know(small_corpus, tmp_path):
    """E.g. killed between Chroma's add and the records' update, and the file changed since:
    without repair the unrecorded chunk of the old text would stay in the store for good."""
    kb = fake_kb(tmp_path, small_corpus)
    assert ingest_corpus(kb, small_corpus).ok
    kb.records.delete_keys(kb.records.list_keys(group_ids=["reisekosten.md"]))
    md = small_corpus / "reisekosten.md"
    md.write_text(md.read_text(encoding="utf-8").replace("800 Euro", "950 Euro"), encoding="utf-8")
    assert ingest_corpus(kb, small_corpus).ok
    texts = kb.collection.get(where={"source": "reisekosten.md"})["documents"]
    assert not any("800 Euro" in text for text in texts)
    assert (
        set(ids_of(kb))
        == clean_ids(tmp_path / "fresh", small_corpus)
        == set(kb.records.list_keys())
    )
