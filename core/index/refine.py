"""Exact scores for an approximate index's candidates: search wide, re-score, keep the best.

IVF-PQ scores are decoded from compressed codes (off by a few hundredths, sometimes above 1),
and its order among close neighbours is noisy. Wherever a score meets a threshold (duplicate
rules) or is shown to a user, candidates are re-scored against the stored vectors, read by id
(from memory, or from memory-mapped shards, see `core.index.shard_rows`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from core.index.vectors import Neighbours, VectorIndex, validate_vectors

DEFAULT_FACTOR = 4  # candidates searched per neighbour kept


def refine_search(index: VectorIndex, queries: np.ndarray, k: int,
                  vectors_of: Callable[[np.ndarray], np.ndarray],
                  factor: int = DEFAULT_FACTOR) -> Neighbours:
    """Top-k with exact cosine scores: `factor * k` candidates from `index`, re-scored.

    An exact index is searched as it is (its scores are already exact).

    Args:
        index: any VectorIndex.
        queries: (Q, D) or (D,) unit rows.
        k: neighbours kept per query.
        vectors_of: (n,) int ids -> (n, D) float32 stored vectors of those ids.
        factor: candidates per neighbour kept (>= 1).

    Returns:
        Neighbours (Q, k): exact scores, best first, ties in id order; -1 / -inf padding.
    """
    if index.kind == "exact":
        return index.search(queries, k)
    q = np.asarray(queries)
    q = validate_vectors(q[None, :] if q.ndim == 1 else q, index.dim, name="queries")
    cand = index.search(q, max(k, k * max(1, factor))).ids  # (Q, k * factor)
    scores = np.full((q.shape[0], k), -np.inf, np.float32)
    ids = np.full((q.shape[0], k), -1, np.int64)
    flat = np.unique(cand[cand >= 0])
    if flat.size == 0:
        return Neighbours(scores, ids)
    stored = np.asarray(vectors_of(flat), np.float32)  # (U, D), rows in `flat` order
    for r in range(q.shape[0]):
        c = np.unique(cand[r][cand[r] >= 0])  # sorted ids
        s = stored[np.searchsorted(flat, c)] @ q[r]  # (C,)
        best = np.lexsort((c, -s))[:k]
        scores[r, :best.size], ids[r, :best.size] = s[best], c[best]
    return Neighbours(scores, ids)
