"""The vector of each chunk's heading alone (its context line: "Title > Section"), stored by text.

Every unit is embedded with its chunk's context line in front, so a bullet under "Kennzahlen" in the
CAIO profile is close to any CAIO question through the heading alone. How far a unit's cosine rises
above its heading's is what the unit's own words add: retrieval ranks on that too (search/
retrieval.py), so the sentence that answers beats one that only sits under a fitting heading. Where
the section is a question (an FAQ entry's), it is content: the heading is the document's title.

A heading is embedded once, when a chunk with it is first stored (a few hundred short texts for a
corpus; new headings only on later ingests), and kept by the SHA-256 of its text next to the ingest
records (SQLite in the data dir, or the PostgreSQL every machine shares), so every replica's
per-version index reads the vectors instead of embedding them. Rows are never deleted: a heading is
a few hundred bytes, and the same text gives the same vector.
"""

from __future__ import annotations

import hashlib

import numpy as np
from sqlalchemy import Column, LargeBinary, MetaData, String, Table, select

from assistant.store.database import DerivedTable

_SCHEMA = MetaData()
HEADINGS_TABLE = Table(
    "heading_vectors",
    _SCHEMA,
    Column("namespace", String(200), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("vector", LargeBinary, nullable=False),
)
_PAGE = 500  # rows per statement (SQLite allows 32,766 variables)


def heading_text(context: str, title: str, section: str) -> str:
    """The text whose vector is a chunk's heading: its context line; only the document's title
    where the section is a question (an FAQ entry), since that question is part of its answer."""
    if section.rstrip().endswith("?") and title.strip():
        return title.strip()
    return context.strip()


def chunk_heading(text: str, metadata: dict) -> str:
    """heading_text() of a stored chunk (its text begins with the context line)."""
    return heading_text(
        text.partition("\n")[0], str(metadata.get("title", "")), str(metadata.get("section", ""))
    )


def heading_key(context: str) -> str:
    """The key of a context line (the first line of a chunk's stored text)."""
    return hashlib.sha256(context.strip().encode("utf-8")).hexdigest()


class HeadingVectors(DerivedTable):
    """Heading vectors of one collection, as float16 (768 bytes each for 384 dimensions)."""

    schema = _SCHEMA

    def ensure(self, contexts: list[str]) -> int:
        """Embed and store the context lines not stored yet; returns how many were new."""
        wanted = {heading_key(c): c.strip() for c in contexts if c.strip()}
        missing = sorted(set(wanted) - self._present(list(wanted)))
        if not missing:
            return 0
        vectors = self.embeddings.embed_documents([wanted[k] for k in missing])
        rows = [
            {"namespace": self.namespace, "key": k, "vector": _encode(v)}
            for k, v in zip(missing, vectors, strict=True)
        ]
        with self.engine.begin() as conn:
            # Another writer may have stored some since: drop those, insert the rest.
            done = self._present(missing, conn)
            rows = [row for row in rows if row["key"] not in done]
            for start in range(0, len(rows), _PAGE):
                conn.execute(HEADINGS_TABLE.insert(), rows[start : start + _PAGE])
        return len(rows)

    def read(self) -> tuple[dict[str, int], np.ndarray]:
        """Every stored heading: its row in the matrix by key, and the unit-length vectors."""
        keys: dict[str, int] = {}
        vectors: list[np.ndarray] = []
        query = select(HEADINGS_TABLE.c.key, HEADINGS_TABLE.c.vector).where(
            HEADINGS_TABLE.c.namespace == self.namespace
        )
        with self.engine.connect() as conn:
            for key, blob in conn.execute(query):
                keys[key] = len(vectors)
                vectors.append(np.frombuffer(blob, dtype="<f2"))
        matrix = np.vstack(vectors) if vectors else np.zeros((0, 0), dtype=np.float16)
        return keys, matrix

    def _present(self, keys: list[str], conn=None) -> set[str]:
        found: set[str] = set()
        if conn is None:
            with self.engine.connect() as own:
                return self._present(keys, own)
        for start in range(0, len(keys), _PAGE):
            rows = conn.execute(
                select(HEADINGS_TABLE.c.key).where(
                    HEADINGS_TABLE.c.namespace == self.namespace,
                    HEADINGS_TABLE.c.key.in_(keys[start : start + _PAGE]),
                )
            )
            found.update(row[0] for row in rows)
        return found


def _encode(vector: list[float]) -> bytes:
    v = np.asarray(vector, dtype=np.float32)
    return (v / (np.linalg.norm(v) + 1e-12)).astype("<f2").tobytes()
