"""How the units quoted from one passage are laid out (answer.py chooses them, quoting.py picks).

Paragraphs, lists and tables keep their shape: sentences of a paragraph run on, each list item is
a line of its own, a table row stays a row under its table's header row; every quoted unit ends
with the passage's [n] (a row in its last cell), and a list or table that was not quoted whole
says how much of it was left out ("… 3 weitere Punkte in [2]").
"""

from __future__ import annotations

import re

from assistant.answering.quoting import omitted_items
from assistant.ingest.units import Unit

_OMITTED_ROWS = {
    "de": ("… 1 weitere Zeile in [{n}]", "… {count} weitere Zeilen in [{n}]"),
    "en": ("… 1 more row in [{n}]", "… {count} more rows in [{n}]"),
}
_OMITTED = {
    "de": ("… 1 weiterer Punkt in [{n}]", "… {count} weitere Punkte in [{n}]"),
    "en": ("… 1 more point in [{n}]", "… {count} more points in [{n}]"),
}


def lay_out(head: str, units: list[Unit], picked: list[Unit], n: int, language: str) -> list[str]:
    """The lines of one passage's quote: `head` (who says it), then the `picked` units of the
    passage's `units` in reading order, each with [n], then what a quoted list left out."""
    lines: list[str] = [head]
    paragraph: list[str] = []
    table = -1
    for unit in picked:
        if unit.listed and paragraph:
            lines.append(" ".join(paragraph))
            paragraph = []
        if unit.kind == "row":
            # A table stays a table: its header row first, each row whole, [n] in its last cell.
            cells = unit.text.split(" | ")
            if unit.block != table:  # the header row
                lines.append("| " + " | ".join(cells) + " |")
                lines.append("|" + "---|" * len(cells))
                table = unit.block
            else:
                lines.append("| " + " | ".join([*cells[:-1], f"{cells[-1]} [{n}]"]) + " |")
            continue
        if table >= 0 and lines[-1].startswith("|"):
            lines.append("")  # a table ends with a blank line
        if unit.listed:
            lines.append(f"- {unit.text} [{n}]")
        else:
            paragraph.append(f"{unit.text} [{n}]")
    if paragraph:
        lines.append(" ".join(paragraph))
    if not any(f"[{n}]" in line for line in lines[1:]):  # only a table's header was picked
        if lines[-1].startswith("|---"):
            lines[-2] = re.sub(r"\s*\|$", f" [{n}] |", lines[-2])
        else:
            lines[-1] = f"{lines[-1]} [{n}]"
    omitted = omitted_items(units, picked)
    if omitted:
        rows = {u.kind for u in picked if u.listed} == {"row"}
        one, many = _OMITTED_ROWS[language] if rows else _OMITTED[language]
        if lines[-1].startswith("|"):
            lines.append("")
        lines.append((one if omitted == 1 else many).format(count=omitted, n=n))
    return lines
