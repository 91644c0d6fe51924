"""Recent conversations of signed-in users, so a reload or another device brings them back.

One row per conversation (table `conversations`, in the app database every replica shares): the
user id, when it started and was last continued, its first question as the title, and the chat as
shown (questions and answers). Kept as long as the audit log (`ASSISTANT_AUDIT_RETENTION_DAYS`,
counted from the last question) and deletable by the user at any time. Anonymous users' chats are
kept in their own browser only (the chat page's BrowserState), never here.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine

from assistant.store.database import create_tables

metadata = MetaData()

conversations_table = Table(
    "conversations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(200), nullable=False, index=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, index=True),
    Column("title", String(200), nullable=False),
    Column("messages", Text, nullable=False),  # JSON: the chat as shown
    Column("turns", Text, nullable=False),  # JSON: question and answer of each turn
)
RECENT = 10  # conversations listed per user
MAX_BYTES = 2_000_000  # a longer conversation is not saved again (the chat keeps working)


def new_id() -> str:
    return uuid.uuid4().hex


class Conversations:
    """Save, list, load and delete one user's conversations; purge old ones."""

    def __init__(self, engine: Engine, retention_days: int) -> None:
        self.engine = engine
        self.retention = timedelta(days=retention_days)
        create_tables(engine, metadata)

    def save(self, user: str, conversation: str, messages: list, turns: list) -> bool:
        """Store the conversation as it is now (insert or update); False if it is too large."""
        body = json.dumps(messages, ensure_ascii=False)
        steps = json.dumps(turns, ensure_ascii=False)
        if len(body) + len(steps) > MAX_BYTES:
            return False
        now = datetime.now(UTC)
        title = next((t.get("question", "") for t in turns if isinstance(t, dict)), "")[:200]
        c = conversations_table.c
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(conversations_table)
                .where(c.id == conversation, c.user_id == user)
                .values(updated_at=now, messages=body, turns=steps)
            ).rowcount
            if not changed:
                conn.execute(
                    insert(conversations_table).values(
                        id=conversation,
                        user_id=user,
                        started_at=now,
                        updated_at=now,
                        title=title or "…",
                        messages=body,
                        turns=steps,
                    )
                )
        return True

    def recent(self, user: str, limit: int = RECENT) -> list[dict]:
        """The user's latest conversations, newest first: id, title, updated_at."""
        c = conversations_table.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(c.id, c.title, c.updated_at)
                .where(c.user_id == user)
                .order_by(c.updated_at.desc())
                .limit(limit)
            ).mappings()
            return [dict(r) for r in rows]

    def load(self, user: str, conversation: str) -> tuple[list, list] | None:
        """(messages, turns) of one of the user's conversations; None if it is not theirs."""
        c = conversations_table.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(c.messages, c.turns).where(c.id == conversation, c.user_id == user)
            ).first()
        return (json.loads(row[0]), json.loads(row[1])) if row else None

    def delete(self, user: str, conversation: str | None = None) -> int:
        """Delete one of the user's conversations, or all of them (None); how many went."""
        c = conversations_table.c
        query = delete(conversations_table).where(c.user_id == user)
        if conversation is not None:
            query = query.where(c.id == conversation)
        with self.engine.begin() as conn:
            return conn.execute(query).rowcount

    def purge(self, now: datetime | None = None) -> int:
        """Delete conversations not continued within the retention period; how many."""
        cutoff = (now or datetime.now(UTC)) - self.retention
        with self.engine.begin() as conn:
            return conn.execute(
                delete(conversations_table).where(conversations_table.c.updated_at < cutoff)
            ).rowcount
