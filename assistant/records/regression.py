"""A regression set from real use: thumbs-up answers promoted (by an admin) into the evaluation set.

A promoted answer becomes a golden item in the table `eval_promoted` (same database as the
feedback), which `python -m assistant eval` reads next to eval/golden.yaml:

    {id: fb-<feedback id>, lang, question, answerable, expected: [{source, contains}], groups: []}

- An answer that quoted the knowledge base is `answerable`; `expected` holds the first cited
  documents (at most MAX_EXPECTED), each with a distinctive snippet of what it quoted, so the item
  checks that retrieval still finds that passage.
- A thumbs-up on "not in the knowledge base" says the refusal was right: an unanswerable item.
- Thumbs-down and unknown ids are refused (PromoteError); promoting twice returns the first item.
- `groups` stays empty (documents for everyone): feedback rows do not record the asker's groups,
  so an item found through a restricted document fails in eval until an admin adds the group to it.

The item is a copy: it stays when the feedback row's text is blanked after the retention period
(retention.py keeps promoted rows whole, so the item's origin stays visible to admins too).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    inspect,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from assistant.evaluation.harness import GoldenItem, normalise_snippet
from assistant.records.feedback import feedback_table
from assistant.search.lexical import Tell, detect_language
from assistant.store.database import create_tables, make_engine

metadata = MetaData()

promoted_table = Table(
    "eval_promoted",
    metadata,
    Column("feedback_id", Integer, primary_key=True),  # one item per feedback row
    Column("promoted_at", DateTime(timezone=True), nullable=False),
    Column("promoted_by", String(200), nullable=False),  # the admin's user id
    Column("item", Text, nullable=False),  # the golden item as JSON
)

MAX_EXPECTED = 2  # cited documents an item accepts (the first ones of the answer)
SNIPPET_WORDS = 8  # words of a quoted sentence used as its `contains` snippet
MIN_SNIPPET_WORDS = 4  # shorter quoted units are not distinctive enough


class PromoteError(ValueError):
    """A feedback row that cannot be promoted; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def item_id(feedback_id: int) -> str:
    return f"fb-{feedback_id}"


def _snippet(quoted: str, text: str) -> str:
    """The first SNIPPET_WORDS words of a quoted unit, if they occur in the passage text."""
    words = re.sub(r"\s+", " ", quoted).strip().lstrip("-•* ").split(" ")
    if len([w for w in words if w]) < MIN_SNIPPET_WORDS:
        return ""
    snippet = " ".join(words[:SNIPPET_WORDS]).strip()
    return snippet if normalise_snippet(snippet) in normalise_snippet(text) else ""


def expected_passages(citations: list) -> list[dict]:
    """{source, contains} for the first cited documents: the longest quoted unit of each that
    is long enough and occurs in the cited passage (LLM answers quote nothing: then the start of
    the passage itself)."""
    expected: list[dict] = []
    for citation in citations if isinstance(citations, list) else []:
        if not isinstance(citation, dict):
            continue
        source, text = citation.get("source"), citation.get("text")
        if not isinstance(source, str) or not source or not isinstance(text, str):
            continue
        if any(e["source"] == source for e in expected):
            continue
        listed = citation.get("quoted")
        quoted = [q for q in listed if isinstance(q, str)] if isinstance(listed, list) else []
        candidates = sorted(quoted, key=len, reverse=True) + [text]
        snippet = next((s for s in (_snippet(q, text) for q in candidates) if s), "")
        if snippet:
            expected.append({"source": source, "contains": snippet})
        if len(expected) >= MAX_EXPECTED:
            break
    return expected


def golden_item(row: dict, tell: Tell | None = None) -> dict:
    """The golden item for a thumbs-up feedback row (PromoteError if none can be made); `tell`
    decides the language of a question whose function words do not (see detect_language)."""
    question = (row.get("question") or "").strip()
    if not question:
        raise PromoteError(
            409, f"feedback {row['id']}: its text was removed after the retention period"
        )
    citations = row["citations"]
    if isinstance(citations, str):
        citations = json.loads(citations)
    item: dict = {
        "id": item_id(row["id"]),
        "lang": detect_language(question, tell),
        "question": question,
        "answerable": bool(row["answered"]),
        "expected": [],
        "groups": [],
    }
    if item["answerable"]:
        item["expected"] = expected_passages(citations)
        if not item["expected"]:
            raise PromoteError(
                422, f"feedback {row['id']}: the answer has no quoted passage to expect"
            )
    return item


class RegressionSet:
    """Promoted items in the app database, next to the feedback they came from."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(engine, metadata)

    def promote(
        self, feedback_id: int, by: str = "", verify=None, tell: Tell | None = None
    ) -> dict:
        """Promote a thumbs-up answer; returns the golden item (the existing one if promoted
        before). `verify(source, snippet) -> bool` may check each expected passage against
        the current knowledge base; `tell` see golden_item."""
        existing = self.get(feedback_id)
        if existing is not None:
            return existing
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(feedback_table).where(feedback_table.c.id == feedback_id))
                .mappings()
                .first()
            )
        if row is None:
            raise PromoteError(404, f"no feedback with id {feedback_id}")
        if row["rating"] != 1:
            raise PromoteError(
                409,
                f"feedback {feedback_id} is a thumbs-down: only thumbs-up answers can be promoted",
            )
        item = golden_item(dict(row), tell)
        if verify is not None:
            for expected in item["expected"]:
                if not verify(expected["source"], expected["contains"]):
                    raise PromoteError(
                        409,
                        f"feedback {feedback_id}: the quoted text is no longer in "
                        f"{expected['source']} (the document changed)",
                    )
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(promoted_table).values(
                        feedback_id=feedback_id,
                        promoted_at=datetime.now(UTC),
                        promoted_by=by or "",
                        item=json.dumps(item, ensure_ascii=False),
                    )
                )
        except IntegrityError:  # promoted at the same moment by another admin
            pass
        return self.get(feedback_id) or item

    def demote(self, feedback_id: int) -> bool:
        """Take an item out of the regression set; whether there was one."""
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    delete(promoted_table).where(promoted_table.c.feedback_id == feedback_id)
                ).rowcount
            )

    def get(self, feedback_id: int) -> dict | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(promoted_table.c.item).where(promoted_table.c.feedback_id == feedback_id)
            ).scalar()
        return json.loads(value) if value else None

    def rows(self) -> list[dict]:
        """Promoted items, oldest first: feedback_id, promoted_at, promoted_by, item."""
        with self.engine.connect() as conn:
            result = conn.execute(
                select(promoted_table).order_by(promoted_table.c.feedback_id)
            ).mappings()
            return [{**r, "item": json.loads(r["item"])} for r in result]

    def items(self) -> list[GoldenItem]:
        return [_golden(r["item"]) for r in self.rows()]

    def candidates(self, limit: int = 200) -> list[dict]:
        """Thumbs-up feedback not promoted yet and still with its text, newest first."""
        promoted = select(promoted_table.c.feedback_id)
        query = (
            select(feedback_table)
            .where(feedback_table.c.rating == 1)
            .where(feedback_table.c.question != "")
            .where(feedback_table.c.id.not_in(promoted))
            .order_by(feedback_table.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                {**r, "citations": json.loads(r["citations"] or "[]")}
                for r in conn.execute(query).mappings()
            ]


def _golden(item: dict) -> GoldenItem:
    return GoldenItem(
        item["id"],
        item["lang"],
        item["question"],
        bool(item["answerable"]),
        list(item.get("expected") or []),
        list(item.get("groups") or []),
    )


def load_promoted(url: str) -> list[GoldenItem]:
    """The promoted items in the database at `url`; none when it (or the table) does not exist.
    Never creates the database: `eval` on a fresh checkout must not leave files behind."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path not in ("", ":memory:") and not Path(path).exists():
            return []
    engine = make_engine(url)
    try:
        if not inspect(engine).has_table(promoted_table.name):
            return []
        return RegressionSet(engine).items()
    finally:
        engine.dispose()
