"""The audit trail: every answer with who asked (user id only, never a token), kept for a set time."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

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
    select,
)

from assistant.answering.answer import Answer
from assistant.identity import Identity
from assistant.store.database import add_columns, create_tables, make_engine

metadata = MetaData()

audit_table = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("user_id", String(200), nullable=False),  # "anonymous" when nobody signed in
    Column("via", String(16), nullable=False),  # anonymous | token | proxy | login
    Column("groups", String(500), nullable=False),
    Column("channel", String(16), nullable=False),  # api | chat | widget
    Column("question", Text, nullable=False),
    Column("answered", Integer, nullable=False),
    Column("mode", String(32), nullable=False),
    Column("sources", Text, nullable=False),  # JSON list of cited documents
    # question to answer, in ms (queue wait included); NULL in rows written before it was kept
    Column("latency_ms", Integer, nullable=True),
    # JSON list of the question's names no document mentions (Answer.unmentioned); NULL if none
    Column("unmentioned", Text, nullable=True),
)

# Columns added after the first release: tables made before them get them on start.
_ADDED_COLUMNS = {"latency_ms": "INTEGER", "unmentioned": "TEXT"}


def add_missing_columns(engine) -> list[str]:
    """Bring an existing audit_log table up to date; returns the columns it added."""
    return add_columns(engine, audit_table.name, _ADDED_COLUMNS)


class AuditLog:
    """Append-only log of answers; rows older than the retention period are deleted."""

    def __init__(self, url: str, retention_days: int, purge_every_s: float = 3600) -> None:
        self.engine = make_engine(url)
        create_tables(self.engine, metadata)
        add_missing_columns(self.engine)
        self.retention = timedelta(days=retention_days)
        self.purge_every_s = purge_every_s
        self._last_purge = 0.0
        self._lock = threading.Lock()

    def record(
        self, who: Identity, answer: Answer, channel: str, latency_ms: int | None = None
    ) -> None:
        row = {
            "created_at": datetime.now(UTC),
            "user_id": who.user or "anonymous",
            "via": who.via,
            "groups": ",".join(sorted(who.groups)),
            "channel": channel,
            "question": answer.question,
            "answered": int(answer.answered),
            "mode": answer.mode,
            "sources": json.dumps(sorted({c.source for c in answer.citations})),
            "latency_ms": None if latency_ms is None else max(0, int(latency_ms)),
            "unmentioned": json.dumps(answer.unmentioned) if answer.unmentioned else None,
        }
        with self.engine.begin() as conn:
            conn.execute(insert(audit_table).values(**row))
        if time.monotonic() - self._last_purge > self.purge_every_s:
            self.purge()

    def purge(self, now: datetime | None = None) -> int:
        """Delete rows past the retention period; returns how many."""
        with self._lock:
            self._last_purge = time.monotonic()
            cutoff = (now or datetime.now(UTC)) - self.retention
            with self.engine.begin() as conn:
                return conn.execute(
                    delete(audit_table).where(audit_table.c.created_at < cutoff)
                ).rowcount

    def rows(self) -> list[dict]:
        with self.engine.connect() as conn:
            result = conn.execute(select(audit_table).order_by(audit_table.c.id)).mappings()
            return [
                {
                    **r,
                    "sources": json.loads(r["sources"]),
                    "unmentioned": json.loads(r["unmentioned"] or "[]"),
                }
                for r in result
            ]


# --- admin changes ------------------------------------------------------------------------------

admin_events_table = Table(
    "admin_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(200), nullable=False),  # the admin's user id
    Column("action", String(64), nullable=False),  # e.g. rollout.plan
    Column("before", Text, nullable=False),  # JSON of the old value
    Column("after", Text, nullable=False),  # JSON of the new value
)


def admin_event(actor: str, action: str, before: object, after: object) -> dict:
    """One row of admin_events: who changed what, from what to what (written by the caller in the
    transaction of the change, so a change is never stored without its entry)."""
    return {
        "created_at": datetime.now(UTC),
        "actor": (actor or "unknown")[:200],
        "action": action[:64],
        "before": json.dumps(before, ensure_ascii=False, sort_keys=True),
        "after": json.dumps(after, ensure_ascii=False, sort_keys=True),
    }


def admin_events(engine, action: str | None = None, limit: int = 200) -> list[dict]:
    """The latest admin changes, newest first (kept beyond the answers' retention period: they
    are the record of the admins' decisions, not of employees' questions)."""
    e = admin_events_table.c
    query = select(admin_events_table).order_by(e.id.desc()).limit(limit)
    if action:
        query = query.where(e.action == action)
    with engine.connect() as conn:
        return [
            {**r, "before": json.loads(r["before"]), "after": json.loads(r["after"])}
            for r in conn.execute(query).mappings()
        ]
