"""Thumbs up/down with an optional comment, stored durably (SQLAlchemy; SQLite in the data dir by default)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from assistant.store.database import add_columns, create_tables, make_engine

metadata = MetaData()

feedback_table = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("citations", Text, nullable=False),  # JSON list of the cited passages
    Column("answered", Integer, nullable=False),
    Column("mode", String(32), nullable=False),
    Column("rating", Integer, nullable=False),  # +1 thumbs up, -1 thumbs down
    Column("comment", Text, nullable=False, default=""),
    # The asker's audience groups (comma-separated, no user id): the rollout's thumbs-up share
    # per group. Empty in rows written before it was kept.
    Column("groups", String(500), nullable=False, default=""),
    # The nonce of the answer's receipt (AnswerReceipts; the chat's turn id): one rating per
    # answer given, a second one replaces the first. Empty in rows written before it was kept.
    Column("receipt", String(32), nullable=False, default=""),
)


# Columns added after the first release: tables made before them get them on start.
_ADDED_COLUMNS = {
    "groups": "VARCHAR(500) NOT NULL DEFAULT ''",
    "receipt": "VARCHAR(32) NOT NULL DEFAULT ''",
}
_RECEIPT_INDEX = (
    "CREATE UNIQUE INDEX IF NOT EXISTS ix_feedback_receipt ON feedback (receipt) "
    "WHERE receipt <> ''"
)


def _text(value: str) -> str:
    """Text the database can store: an unpaired surrogate (JSON allows "\\ud800") becomes "?"."""
    return value.encode("utf-8", "replace").decode("utf-8")


class FeedbackError(RuntimeError):
    """A rating could not be stored (database read-only, full or unreachable)."""


def _write_failed(exc: SQLAlchemyError) -> FeedbackError:
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return FeedbackError(f"the feedback store cannot be written: {reason}")


class FeedbackStore:
    """Where ratings of answers are kept, with the question, answer and citations they rate."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = make_engine(url)
        create_tables(self.engine, metadata)
        add_columns(self.engine, feedback_table.name, _ADDED_COLUMNS)
        try:
            with self.engine.begin() as conn:
                conn.execute(text(_RECEIPT_INDEX))
        except DBAPIError:  # another process starting at the same moment created it
            if "ix_feedback_receipt" not in {
                i["name"] for i in inspect(self.engine).get_indexes(feedback_table.name)
            }:
                raise

    def add(
        self,
        answer: dict,
        rating: int,
        comment: str = "",
        groups: Iterable[str] = (),
        receipt: str = "",
    ) -> int:
        """Store one rating of an answer (the dict of Answer.as_dict()); returns its id. A
        rating with the `receipt` of an answer already rated replaces that rating (and its
        comment, if one is given). FeedbackError when the store cannot be written."""
        if rating not in (1, -1):
            raise ValueError("rating must be +1 (thumbs up) or -1 (thumbs down)")
        row = {
            "created_at": datetime.now(UTC),
            "question": _text(answer["question"]),
            "answer": _text(answer["answer"]),
            "citations": _text(json.dumps(answer.get("citations", []), ensure_ascii=False)),
            "answered": int(bool(answer.get("answered"))),
            "mode": answer.get("mode", "extractive"),
            "rating": rating,
            "comment": _text(comment.strip()[:2000]),
            "groups": ",".join(sorted(groups))[:500],
            "receipt": receipt[:32],
        }
        for attempt in range(2):
            try:
                with self.engine.begin() as conn:
                    if receipt:
                        rated = conn.execute(
                            select(feedback_table.c.id).where(feedback_table.c.receipt == receipt)
                        ).scalar()
                        if rated is not None:
                            again = {"rating": rating, "created_at": row["created_at"]}
                            if row["comment"]:
                                again["comment"] = row["comment"]
                            conn.execute(
                                update(feedback_table)
                                .where(feedback_table.c.id == rated)
                                .values(**again)
                            )
                            return int(rated)
                    key = conn.execute(insert(feedback_table).values(**row)).inserted_primary_key
                    assert key is not None
                    return key[0]
            except IntegrityError:  # the same answer rated twice at once: the other row won
                if attempt:
                    raise
            except SQLAlchemyError as exc:
                raise _write_failed(exc) from exc
        raise AssertionError("unreachable")

    def set_comment(self, feedback_id: int, comment: str) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    update(feedback_table)
                    .where(feedback_table.c.id == feedback_id)
                    .values(comment=_text(comment.strip()[:2000]))
                )
        except SQLAlchemyError as exc:
            raise _write_failed(exc) from exc

    def all(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(feedback_table).order_by(feedback_table.c.id)).mappings()
            return [{**row, "citations": json.loads(row["citations"])} for row in rows]
