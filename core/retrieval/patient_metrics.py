"""Same-patient retrieval: how well a model finds a patient's other films (priors, follow-ups).

Relevant = another image with the query's patient id. A query whose patient has no other
image in the gallery, or that has no patient id, is skipped. The query itself never counts.
Ties in similarity are broken by position in the gallery, as in `core.retrieval.metrics`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from core.retrieval.metrics import _MAX_BLOCK_ENTRIES, _as_relevance, _check_inputs, _patient_codes


def recall_at_k(relevant: np.ndarray, k: int) -> float:
    """Fraction of all relevant items that appear in the top k.

    Args:
        relevant: (G,) bool, relevance of one query's gallery in ranked order (best first).
        k: cut-off, >= 1.

    Returns:
        Recall at k in [0, 1]; 0.0 when no item is relevant.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rel = _as_relevance(relevant)
    n_rel = int(rel.sum())
    return float(rel[:k].sum()) / n_rel if n_rel else 0.0


@dataclass(frozen=True)
class SamePatientScores:
    """Means over the queries whose patient has another film in the gallery."""

    precision_at_1: float
    map: float
    recall_at_5: float
    n_queries: int

    def to_dict(self) -> dict:
        """JSON-ready; the three metrics are None when no query had a partner film."""
        d = asdict(self)
        if self.n_queries == 0:
            d.update(precision_at_1=None, map=None, recall_at_5=None)
        return d


# ((B,) query rows, (B, C) candidate rows) -> (B, C) evidence that each candidate is the query's patient
Shared = Callable[[np.ndarray, np.ndarray], np.ndarray]


class PatientEvidence(Protocol):
    """A `Shared` that also says how deep it re-ranks and, in words, what it measures."""

    depth: int
    method: str

    def __call__(self, queries: np.ndarray, candidates: np.ndarray) -> np.ndarray: ...


def same_patient_retrieval(vectors: np.ndarray, patients: Sequence[str], query_idx: np.ndarray,
                           gallery_idx: np.ndarray, block: int = 1024) -> SamePatientScores:
    """Rank each query's gallery by cosine similarity; relevant = same (known) patient id.

    Args:
        vectors: (N, D) L2-normalised embeddings.
        patients: N patient ids, "" (or None) when unknown.
        query_idx: (Q,) indices of the queries; gallery_idx: (G,) distinct gallery indices.

    Returns:
        SamePatientScores; all zeros with n_queries 0 when no query has a partner film.
    """
    return _scores(_ranked_blocks(vectors, patients, query_idx, gallery_idx, block))


def reranked_same_patient(vectors: np.ndarray, patients: Sequence[str], query_idx: np.ndarray,
                          gallery_idx: np.ndarray, shared: Shared, depth: int,
                          max_queries: int | None = None) -> SamePatientScores:
    """As `same_patient_retrieval`, with each query's top `depth` re-ranked by other evidence.

    The `depth` nearest films by cosine similarity are re-ordered by the evidence `shared` gives
    (higher first; ties keep the cosine order); the rest of the gallery follows in cosine order.

    Args:
        vectors, patients, query_idx, gallery_idx: as `same_patient_retrieval`.
        shared: evidence that two films are one patient (e.g. shared landmarks).
        depth: how many nearest films are re-ranked, >= 1.
        max_queries: score at most this many queries, evenly spaced among the eligible ones
            (None: all); n_queries says how many were scored.

    Returns:
        SamePatientScores over the scored queries.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    q = np.asarray(query_idx, dtype=np.int64)
    codes = _patient_codes(patients, len(patients))
    in_gallery = np.bincount(codes[np.asarray(gallery_idx)][codes[np.asarray(gallery_idx)] >= 0],
                             minlength=max(int(codes.max()) + 1, 1))  # films per patient
    self_in = np.isin(q, gallery_idx).astype(np.int64)
    q = q[(codes[q] >= 0) & (in_gallery[np.maximum(codes[q], 0)] - self_in > 0)]  # has a partner film
    if max_queries is not None and len(q) > max_queries:
        q = q[np.unique(np.linspace(0, len(q) - 1, max_queries).round().astype(np.int64))]
    if q.size == 0:
        return SamePatientScores(0.0, 0.0, 0.0, 0)
    return _scores(_reranked(block, shared, depth)
                   for block in _ranked_blocks(vectors, patients, q, gallery_idx, 256, keep_order=True))


def _reranked(block, shared: Shared, depth: int):
    """One block of `_ranked_blocks` with each query's top `depth` re-ordered by `shared`."""
    queries, order, ranked = block
    top = order[:, :depth]  # (B, C)
    evidence = np.asarray(shared(queries, top)).reshape(top.shape)
    out = ranked.copy()
    out[:, :top.shape[1]] = np.take_along_axis(ranked[:, :top.shape[1]],
                                               np.argsort(-evidence, axis=1, kind="stable"), axis=1)
    return queries, None, out


def _ranked_blocks(vectors: np.ndarray, patients: Sequence[str], query_idx: np.ndarray,
                   gallery_idx: np.ndarray, block: int, keep_order: bool = False):
    """Per block of eligible queries: (query rows, gallery rows best first or None, (B, G) relevance)."""
    vecs, q, g = _check_inputs(vectors, ["" for _ in range(len(patients))], query_idx, gallery_idx)
    codes = _patient_codes(patients, vecs.shape[0])
    gallery_codes = codes[g]  # (G,)
    gallery_pos = np.full(vecs.shape[0], -1, dtype=np.int64)
    gallery_pos[g] = np.arange(g.size)
    rows = max(1, min(block, _MAX_BLOCK_ENTRIES // g.size))
    for start in range(0, q.size, rows):
        qb = q[start:start + rows]
        qb = qb[codes[qb] >= 0]  # unknown patient: nothing to find
        if qb.size == 0:
            continue
        scores = vecs[qb] @ vecs[g].T  # (B, G)
        rel = gallery_codes[None, :] == codes[qb][:, None]  # (B, G)
        self_pos = gallery_pos[qb]
        inside = np.flatnonzero(self_pos >= 0)
        scores[inside, self_pos[inside]] = -np.inf
        rel[inside, self_pos[inside]] = False
        keep = rel.any(axis=1)
        if not keep.any():
            continue
        order = np.argsort(-scores[keep], axis=1, kind="stable")  # (B', G) gallery positions
        yield qb[keep], g[order] if keep_order else None, np.take_along_axis(rel[keep], order, axis=1)


def _scores(blocks) -> SamePatientScores:
    """Mean P@1, AP and recall@5 over blocks of ranked relevance rows (B, G), best first."""
    sums, n = np.zeros(3), 0
    for _, _, ranked in blocks:
        if len(ranked) == 0:
            continue
        hits = np.cumsum(ranked, axis=1)  # (B, G)
        n_rel = hits[:, -1].astype(np.float64)
        ranks = np.arange(1, ranked.shape[1] + 1)
        ap = np.where(ranked, hits / ranks, 0.0).sum(axis=1) / n_rel
        sums += [ranked[:, 0].sum(), ap.sum(), (hits[:, min(5, ranked.shape[1]) - 1] / n_rel).sum()]
        n += len(ranked)
    if n == 0:
        return SamePatientScores(0.0, 0.0, 0.0, 0)
    p1, m, r5 = (float(x) for x in sums / n)
    return SamePatientScores(p1, m, r5, n)
