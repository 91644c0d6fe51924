"""Question text is kept only for `audit_retention_days`, in the audit log, the feedback and the
saved conversations (deleted when not continued for that long).

- Audit rows older than the retention period are deleted (AuditLog.purge).
- Feedback rows older than it keep their date, rating, answered flag and mode (the analytics'
  thumbs up/down per day), but their question, answer, comment and citations are blanked.
- Exception: feedback an admin promoted into the regression set stays whole. Promoting is a
  deliberate decision to keep that question as a test case (it carries no user id; feedback
  never records one); taking the item out of the set (RegressionSet.demote) lets the next purge
  blank it like any other.

RetentionJob runs both purges when the server starts and then every `every_s` seconds, so text
expires even when nobody asks anything (AuditLog.record purging on the way is not enough alone).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Engine

from assistant.records.feedback import feedback_table
from assistant.records.regression import metadata as regression_metadata
from assistant.records.regression import promoted_table
from assistant.store.database import create_tables

log = logging.getLogger(__name__)


def purge_feedback_text(engine: Engine, retention_days: int, now: datetime | None = None) -> int:
    """Blank the text of feedback rows past the retention period (promoted rows excepted);
    returns how many rows were blanked now."""
    create_tables(engine, regression_metadata)
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    c = feedback_table.c
    with engine.begin() as conn:
        return conn.execute(
            update(feedback_table)
            .where(c.created_at < cutoff)
            .where(c.id.not_in(select(promoted_table.c.feedback_id)))
            .where(or_(c.question != "", c.answer != "", c.comment != "", c.citations != "[]"))
            .values(question="", answer="", comment="", citations="[]")
        ).rowcount


class RetentionJob:
    """Purges audit rows and feedback text past the retention period, now and periodically."""

    def __init__(
        self,
        audit,
        feedback_engine: Engine,
        retention_days: int,
        every_s: float = 3600,
        conversations=None,
    ):
        self.audit = audit
        self.conversations = conversations
        self.feedback_engine = feedback_engine
        self.retention_days = retention_days
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: datetime | None = None) -> dict:
        """Every purge once; {"audit_deleted": n, "feedback_blanked": m, ...}."""
        done = {
            "audit_deleted": self.audit.purge(now=now),
            "feedback_blanked": purge_feedback_text(self.feedback_engine, self.retention_days, now),
        }
        if self.conversations is not None:
            done["conversations_deleted"] = self.conversations.purge(now=now)
        return done

    def _loop(self) -> None:
        while True:
            try:
                done = self.run_once()
                if any(done.values()):
                    log.info("retention purge: %s", done)
            except Exception:  # noqa: BLE001 - a database hiccup must not end the schedule
                log.exception("retention purge failed")
            if self._stop.wait(self.every_s):
                return

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="retention-purge", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
