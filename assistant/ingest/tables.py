"""Tables as Markdown rows: from the rows of an HTML or DOCX table, and from a PDF page.

pypdf's plain extraction runs a table's cells together line by line ("NordGPT: Chatverläufe 30 Tage
nach der letzten automatisch" / "Nachricht"): a row reads as a sentence, a wrapped cell as a
line of its own. Its layout extraction keeps each glyph's column, so a table shows as text in
columns three or more spaces apart. Here such a region becomes Markdown rows: the first line is
the header, a row's wrapped cells are joined into it, every other line is the plain text (its
spaces collapsed: the same line the plain extraction gives).
"""

from __future__ import annotations

import re
from collections import Counter


def table_lines(rows: list[list[str]]) -> list[str]:
    """A table as Markdown: the first row is the header, each row one line, cells whole (a "|"
    inside a cell becomes "/")."""
    rows = [[c.replace("|", "/") for c in row] for row in rows if any(row)]
    if not rows:
        return []
    width = max(len(row) for row in rows)
    cells = [row + [""] * (width - len(row)) for row in rows]
    lines = ["| " + " | ".join(row) + " |" for row in cells]
    return ["", lines[0], "|" + "---|" * width, *lines[1:], ""]


# A cell's text: words with at most two spaces between them; three or more separate cells.
_SEGMENT = re.compile(r"\S+(?: {1,2}\S+)*")
_SLACK = 2  # characters a cell may start before its column (layout extraction rounds)
HEADER_WORDS = 4  # at most, per header cell
_TABLE_RULE = re.compile(r"^\|(---\|)*$")  # a cell border or the header's rule


def layout_text(layout: str) -> str:
    """The page's text from pypdf's layout extraction: tables as Markdown rows, the rest as
    plain lines."""
    lines = layout.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        rows, end = _table_at(lines, i)
        if rows:
            out.extend(table_lines(rows))
            i = end
        else:
            out.append(" ".join(lines[i].split()))
            i += 1
    return "\n".join(out)


def same_words(plain: str, layout: str) -> bool:
    """Whether layout_text() holds the words of the plain extraction, no more, no fewer (cell
    borders aside)."""
    return Counter(plain.split()) == Counter(w for w in layout.split() if not _TABLE_RULE.match(w))


def _segments(line: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group(0)) for m in _SEGMENT.finditer(line)]


def _place(line: str, columns: list[int]) -> list[str] | None:
    """The line's text per column, or None where a piece of it does not fit one column (a line
    of prose runs across them)."""
    cells = [""] * len(columns)
    for start, end, text in _segments(line):
        j = max((k for k, c in enumerate(columns) if c <= start + _SLACK), default=-1)
        if j < 0 or (j + 1 < len(columns) and end > columns[j + 1] - 1):
            return None
        cells[j] = f"{cells[j]} {text}".strip()
    return cells


def _table_at(lines: list[str], start: int) -> tuple[list[list[str]], int]:
    """The rows of a table whose header is lines[start] and the index after it; no rows where
    no table starts there. A row starts after a blank line or where it fills the first column
    and another; other lines continue the row above (a wrapped cell). A table has a header and
    at least one row."""
    header = _segments(lines[start])
    if len(header) < 2 or any(len(text.split()) > HEADER_WORDS for _, _, text in header):
        return [], start  # (checked first: a page of long lines is not scanned line by line)
    columns = [s for s, _, _ in header]
    rows: list[list[str]] = []
    after_blank, end = True, start
    for i in range(start, len(lines)):
        if not lines[i].strip():
            after_blank = True
            continue
        cells = _place(lines[i], columns)
        if cells is None:
            break
        filled = sum(bool(c) for c in cells)
        if after_blank or (cells[0] and filled >= 2):
            if filled < 2:  # a lone line after the table (a heading, a caption)
                break
            rows.append(cells)
        else:
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
        after_blank, end = False, i + 1
    return (rows, end) if len(rows) >= 2 and _headed(rows[0]) else ([], start)


def _headed(header: list[str]) -> bool:
    """Whether a table's first row reads as a header: short names, no sentence ending. Two
    columns of prose set side by side (a two-column page) start with pieces of sentences."""
    return all(
        len(cell.split()) <= HEADER_WORDS and not cell.endswith((".", ",", ";", ":", "!", "?", "-"))
        for cell in header
    )
