"""An English question's top passages reordered by their latent terms (store/latent.py).

e5-small's dense vector of an English question lands near German passages about the same
subject, but not reliably on the one that answers: the fusion's first passage was the answering
one for two thirds of the English tuning questions against three quarters of the German ones.
The latent terms compare a question with each unit of a passage word-sense by word-sense, across
languages. Each of the top passages gets the cosine of its best unit's terms with the question's,
and the passages are reordered by `score + weight * (best - the best of all)`: a passage close
behind the first that says what was asked overtakes it; a clear first stays first. Measured on
the eleven tuning sets (scripts/measure_sparse_rerank.py): English recall@1 .663 -> .702 at
weight 2 (.693 at 1, .706 at 3), spread over the sets; German .760 -> .759 (golden -6 of 36 at
weight 3: the dense vector and BM25 already read German well), so German questions are not
reordered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from assistant.store.embeddings import LatentTerms

if TYPE_CHECKING:
    from assistant.search.passage import Passage

# Passages whose fused scores are further apart than this are left in their order without
# computing anything: weight * (difference of two cosines) rarely reaches it (on the tuning sets
# the rerank changed nothing beyond 0.1 that it did not also change below it, within a point).
CLOSE = 0.1


def cosine(a: LatentTerms, b: LatentTerms) -> float:
    (ia, va), (ib, vb) = a, b
    _, pa, pb = np.intersect1d(ia, ib, assume_unique=True, return_indices=True)
    norm = float(np.linalg.norm(va) * np.linalg.norm(vb))
    return float(va[pa] @ vb[pb]) / norm if norm > 0 else 0.0


def rerank(
    passages: list[Passage],
    question: Callable[[], LatentTerms],
    units: Callable[[list[str]], dict[str, list[LatentTerms]]],
    weight: float,
) -> list[Passage]:
    """The passages reordered by latent terms (see above); their scores stay the fusion's.
    `question()` computes the question's terms, `units(keys)` reads the units' terms by chunk
    key; neither is called when the first passage leads clearly, and the question's only when
    the passages have terms stored."""
    if weight <= 0 or len(passages) < 2 or passages[0].score - passages[1].score >= CLOSE:
        return passages
    keys = [p.metadata.get("chunk_key", "") for p in passages]
    stored = units([k for k in keys if k])
    if not stored:  # a store ingested without a sparse head, or synthetic
        return passages
    asked = question()
    best = np.array(
        [max((cosine(asked, terms) for terms in stored.get(k, [])), default=0.0) for k in keys]
    )
    adjusted = np.array([p.score for p in passages]) + weight * (best - best.max())
    order = sorted(range(len(passages)), key=lambda i: -adjusted[i])  # stable among equals
    return [passages[i] for i in order]
