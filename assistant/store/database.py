"""One way to open the app's SQL database (SQLite in the data dir by default, or PostgreSQL), and
the locks every process writing it shares."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import MetaData, create_engine, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

log = logging.getLogger(__name__)


def make_engine(url: str, *, wal: bool = True) -> Engine:
    """An engine that survives concurrent writers: SQLite in WAL mode with a generous lock wait
    (wal=False keeps SQLite's default journal, for a file that is copied as a whole), or a
    PostgreSQL pool that checks a connection before handing it out."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    if not wal:
        return engine

    @event.listens_for(engine, "connect")
    def _pragmas(connection, _record) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints, fast commits
        cursor.close()

    return engine


def is_shared(engine: Engine) -> bool:
    """Whether the database is a server every machine reaches (PostgreSQL), not a local file."""
    return engine.dialect.name == "postgresql"


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory locks."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def advisory_lock(engine: Engine, name: str, *, wait: bool = True) -> Iterator[bool]:
    """Hold PostgreSQL's session-level advisory lock `name` for the block; yields whether it was
    got (wait=False returns at once with False when another session holds it).

    The lock lives on one connection of its own: it is released when the block ends, and by the
    server when the connection drops, so a killed process never leaves it behind.
    """
    key = _lock_key(name)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if wait:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            got = True
        else:
            got = bool(
                conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
            )
        try:
            yield got
        finally:
            if got:
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                except SQLAlchemyError:  # the connection is gone, and the lock with it
                    log.warning("advisory lock %s: connection lost before unlocking", name)
                    conn.invalidate()


def create_tables(engine: Engine, metadata: MetaData) -> None:
    """metadata.create_all, safe when several processes start together on an empty database
    (two concurrent CREATE TABLEs of one name fail one of them)."""
    if not is_shared(engine):
        # One SQLite file, several processes starting: another may create a table between
        # create_all's check and its CREATE; the next pass finds it there.
        for attempt in range(3):
            try:
                metadata.create_all(engine)
                return
            except OperationalError as exc:
                if "already exists" not in str(exc) or attempt == 2:
                    raise
        return
    with advisory_lock(engine, "assistant/create-tables"):
        metadata.create_all(engine)


def add_columns(engine: Engine, table: str, columns: dict[str, str]) -> list[str]:
    """Add the columns a table made by an earlier release lacks (idempotent, SQLite and
    PostgreSQL; safe when several processes start together); returns the columns it added."""

    def present() -> set[str]:
        return {c["name"] for c in inspect(engine).get_columns(table)}

    added = []
    for name, sql_type in columns.items():
        if name in present():
            continue
        try:
            with engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}"))
            added.append(name)
        except DBAPIError:
            if name not in present():  # not a concurrent start that added it first
                raise
    return added


class DerivedTable:
    """A table of what the embedding model derives from stored records (latent terms, heading
    vectors), in the records' database, one namespace per collection; `schema` holds its table."""

    schema: MetaData

    def __init__(self, engine: Engine, namespace: str, embeddings: Any) -> None:
        self.engine = engine
        self.namespace = namespace
        self.embeddings = embeddings

    def create_schema(self) -> None:
        self.schema.create_all(self.engine, checkfirst=True)
