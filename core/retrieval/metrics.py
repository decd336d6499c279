"""Retrieval metrics: precision@k, average precision, MAP@R, and the blocked evaluator.

The single-query functions take one query's ranked gallery as a boolean relevance vector
(best match first). `evaluate_retrieval` ranks every query against a gallery by cosine
similarity and averages the same quantities, computed per block of queries with cumulative
sums so memory stays bounded.

Conventions (chosen to match scikit-learn and Musgrave et al. 2020):
- precision@k divides by k even when fewer than k gallery items exist (missing = not relevant).
- A query with no relevant item in the gallery ("lone" query) has AP = MAP@R = 0 by the
  single-query functions (like scikit-learn, which warns), but `evaluate_retrieval` skips it,
  as pytorch-metric-learning's AccuracyCalculator (Musgrave et al.) does: its ranking says
  nothing about retrieval quality. The number skipped is reported as `n_skipped`.
- Ties in similarity are broken by position in `gallery_idx` (stable sort), so results are
  deterministic; scikit-learn instead treats tied scores as one threshold, so the two agree
  only when there are no ties.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

METRIC_KEYS = ("precision_at_1", "precision_at_5", "precision_at_10", "map", "map_at_r")
_NORM_TOL = 1e-2
# Cap on block x gallery entries held at once: the temporaries take ~40 bytes per entry,
# so this keeps one block near 160 MB whatever the gallery size.
_MAX_BLOCK_ENTRIES = 1 << 22


class NoRelevantItems(ValueError):
    """No query of `evaluate_retrieval` has a relevant (same-label) item in the gallery."""


def _as_relevance(relevant: np.ndarray) -> np.ndarray:
    rel = np.asarray(relevant)
    if rel.ndim != 1:
        raise ValueError(f"relevance must be a 1-D array, got shape {rel.shape}")
    return rel.astype(bool, copy=False)


def precision_at_k(relevant: np.ndarray, k: int) -> float:
    """Fraction of the top k results that are relevant.

    Args:
        relevant: (G,) bool, relevance of one query's gallery in ranked order (best first).
        k: cut-off, >= 1. If k > G the missing positions count as not relevant.

    Returns:
        Precision at k in [0, 1].
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rel = _as_relevance(relevant)
    return float(rel[:k].sum()) / k


def average_precision(relevant: np.ndarray) -> float:
    """Average precision over the full ranking: mean of P(i) at each relevant rank i.

    Equals `sklearn.metrics.average_precision_score` when the scores have no ties.

    Args:
        relevant: (G,) bool, relevance in ranked order (best first).

    Returns:
        AP in [0, 1]; 0.0 when no item is relevant.
    """
    rel = _as_relevance(relevant)
    n_rel = int(rel.sum())
    if n_rel == 0:
        return 0.0
    precision = np.cumsum(rel) / np.arange(1, rel.size + 1)  # (G,)
    return float(precision[rel].sum() / n_rel)


def r_precision(relevant: np.ndarray) -> float:
    """Precision at R, where R is the number of relevant items in the gallery.

    Args:
        relevant: (G,) bool, relevance in ranked order (best first).

    Returns:
        R-precision in [0, 1]; 0.0 when no item is relevant.
    """
    rel = _as_relevance(relevant)
    n_rel = int(rel.sum())
    if n_rel == 0:
        return 0.0
    return float(rel[:n_rel].sum()) / n_rel


def map_at_r(relevant: np.ndarray) -> float:
    """MAP@R (Musgrave et al. 2020, "A Metric Learning Reality Check").

    MAP@R = (1/R) * sum_{i=1..R} P(i) * rel(i), with R the number of relevant items: average
    precision truncated at rank R, so a perfect ranking scores 1 and misses before rank R cost.

    Args:
        relevant: (G,) bool, relevance in ranked order (best first).

    Returns:
        MAP@R in [0, 1]; 0.0 when no item is relevant.
    """
    rel = _as_relevance(relevant)
    n_rel = int(rel.sum())
    if n_rel == 0:
        return 0.0
    top = rel[:n_rel]
    precision = np.cumsum(top) / np.arange(1, n_rel + 1)  # (R,)
    return float(precision[top].sum() / n_rel)


@dataclass(frozen=True)
class RetrievalScores:
    """Mean retrieval metrics over the scored queries, overall and per class.

    `n_queries` counts scored queries (those with at least one relevant gallery item);
    `n_skipped` counts lone queries left out. `per_class` maps a label to the same metric
    keys plus 'n_queries', for every label with at least one scored query. The metrics are
    None when they could not be measured (`absent`: no query has a label).
    """

    precision_at_1: float | None
    precision_at_5: float | None
    precision_at_10: float | None
    map: float | None
    map_at_r: float | None
    n_queries: int
    n_gallery: int
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    n_skipped: int = 0

    def to_dict(self) -> dict:
        """Return the JSON-ready summary with exactly the documented keys (no `n_skipped`)."""
        return {
            "precision_at_1": self.precision_at_1,
            "precision_at_5": self.precision_at_5,
            "precision_at_10": self.precision_at_10,
            "map": self.map,
            "map_at_r": self.map_at_r,
            "per_class": {label: dict(v) for label, v in self.per_class.items()},
            "n_queries": self.n_queries,
            "n_gallery": self.n_gallery,
        }

    @staticmethod
    def absent(n_gallery: int) -> RetrievalScores:
        """No label metrics (every metric None, no scored query): the queries have no labels."""
        return RetrievalScores(None, None, None, None, None, 0, n_gallery)

    @property
    def measured(self) -> bool:
        return self.precision_at_1 is not None

    @staticmethod
    def from_dict(d: dict) -> RetrievalScores:
        """Read back what `to_dict` wrote. Raises KeyError, TypeError, ValueError otherwise."""
        values = [None if d[k] is None else float(d[k]) for k in METRIC_KEYS]
        if None in values and any(v is not None for v in values):
            raise ValueError("some label metrics are missing")
        return RetrievalScores(
            *values, int(d["n_queries"]), int(d["n_gallery"]),
            {str(k): dict(v) for k, v in (d.get("per_class") or {}).items()})


def _block_metrics(rel: np.ndarray) -> np.ndarray:
    """Per-query metrics for a block of ranked relevance rows.

    Args:
        rel: (B, G) bool, each row in ranked order; every row has >= 1 relevant item.

    Returns:
        (B, 5) float64 in METRIC_KEYS order.
    """
    n_gallery = rel.shape[1]
    hits = np.cumsum(rel, axis=1, dtype=np.int32)  # (B, G) relevant items within top i
    n_rel = hits[:, -1].astype(np.float64)  # (B,) R per query
    ranks = np.arange(1, n_gallery + 1, dtype=np.float64)  # (G,)
    prec_at_rel = np.where(rel, hits / ranks, 0.0)  # (B, G) P(i) * rel(i)
    out = np.empty((rel.shape[0], 5))
    for col, k in enumerate((1, 5, 10)):
        out[:, col] = hits[:, min(k, n_gallery) - 1] / k
    out[:, 3] = prec_at_rel.sum(axis=1) / n_rel
    within_r = ranks[None, :] <= n_rel[:, None]  # (B, G) rank i <= R
    out[:, 4] = np.where(within_r, prec_at_rel, 0.0).sum(axis=1) / n_rel
    return out


def _check_inputs(
    vectors: np.ndarray, labels: Sequence[str], query_idx: np.ndarray, gallery_idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vecs = np.asarray(vectors)
    if vecs.ndim != 2 or vecs.shape[0] == 0 or vecs.shape[1] == 0:
        raise ValueError(f"vectors must be a non-empty (N, D) array, got shape {vecs.shape}")
    if len(labels) != vecs.shape[0]:
        raise ValueError(f"{len(labels)} labels for {vecs.shape[0]} vectors")
    vecs = vecs.astype(np.float32, copy=False)
    if not np.isfinite(vecs).all():
        raise ValueError("vectors contain NaN or infinite values")
    norms = np.linalg.norm(vecs, axis=1)
    if np.abs(norms - 1.0).max() > _NORM_TOL:
        raise ValueError("vectors must be L2-normalised (each row of norm 1)")
    n = vecs.shape[0]
    q = np.asarray(query_idx, dtype=np.int64).reshape(-1)
    g = np.asarray(gallery_idx, dtype=np.int64).reshape(-1)
    if q.size == 0:
        raise ValueError("no queries to evaluate (empty query set)")
    if g.size == 0:
        raise ValueError("empty gallery: nothing to rank queries against")
    for name, idx in (("query", q), ("gallery", g)):
        if idx.min() < 0 or idx.max() >= n:
            raise ValueError(f"{name} indices must lie in [0, {n}), got {idx.min()}..{idx.max()}")
    if np.unique(g).size != g.size:
        raise ValueError("gallery indices contain duplicates")
    return vecs, q, g


def _patient_codes(patients: Sequence[str] | None, n: int) -> np.ndarray | None:
    """Patient ids -> (N,) int codes, -1 for an unknown ("" or None) id; None stays None."""
    if patients is None:
        return None
    if len(patients) != n:
        raise ValueError(f"{len(patients)} patient ids for {n} vectors")
    known = [p or "" for p in patients]
    names, codes = np.unique(np.asarray(known, dtype=str), return_inverse=True)
    codes = codes.astype(np.int64)
    if names.size and names[0] == "":
        codes = codes - 1  # "" sorts first: it becomes -1, the rest 0..
    return codes


def evaluate_retrieval(
    vectors: np.ndarray,
    labels: Sequence[str],
    query_idx: np.ndarray,
    gallery_idx: np.ndarray,
    block: int = 1024,
    patients: Sequence[str] | None = None,
) -> RetrievalScores:
    """Rank each query against the gallery by cosine similarity and average the metrics.

    Relevant = same label. A query that is also in the gallery is removed from its own
    ranking. Queries with no relevant gallery item are skipped (see module docstring).
    Ties are broken by position in `gallery_idx`.

    Args:
        vectors: (N, D) L2-normalised embeddings of the whole dataset.
        labels: N labels, one per vector.
        query_idx: (Q,) indices into `vectors` of the queries.
        gallery_idx: (G,) distinct indices into `vectors` of the gallery.
        block: queries scored at once; lowered automatically so block x G stays bounded.
        patients: N patient ids ("" = unknown). When given, each query's ranking also leaves
            out every gallery image of its own patient (an unknown id excludes only itself).

    Returns:
        RetrievalScores with overall means and per-class means.
    """
    vecs, q, g = _check_inputs(vectors, labels, query_idx, gallery_idx)
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    class_names, label_ids = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    n_gallery = g.size
    gallery_pos = np.full(vecs.shape[0], -1, dtype=np.int64)
    gallery_pos[g] = np.arange(n_gallery)  # dataset index -> position in the gallery
    gallery_vecs = vecs[g]  # (G, D)
    gallery_labels = label_ids[g]  # (G,)
    rows = max(1, min(block, _MAX_BLOCK_ENTRIES // n_gallery))
    patient_ids = _patient_codes(patients, vecs.shape[0])  # (N,) -1 = unknown

    per_query = []
    query_class = []
    for start in range(0, q.size, rows):
        qb = q[start : start + rows]  # (B,)
        scores = vecs[qb] @ gallery_vecs.T  # (B, G)
        rel = gallery_labels[None, :] == label_ids[qb][:, None]  # (B, G)
        self_pos = gallery_pos[qb]  # (B,) -1 when the query is not in the gallery
        inside = np.flatnonzero(self_pos >= 0)
        # Send the query to the end of its own ranking and make it irrelevant: with P@k
        # dividing by k, this equals removing it from the gallery.
        scores[inside, self_pos[inside]] = -np.inf
        rel[inside, self_pos[inside]] = False
        if patient_ids is not None:
            qp = patient_ids[qb]  # (B,)
            same = (patient_ids[g][None, :] == qp[:, None]) & (qp[:, None] >= 0)  # (B, G)
            scores[same] = -np.inf
            rel[same] = False
        order = np.argsort(-scores, axis=1, kind="stable")  # (B, G) best first
        ranked = np.take_along_axis(rel, order, axis=1)  # (B, G)
        scored = ranked.any(axis=1)
        if scored.any():
            per_query.append(_block_metrics(ranked[scored]))
            query_class.append(label_ids[qb][scored])

    n_scored = sum(len(c) for c in query_class)
    if n_scored == 0:
        raise NoRelevantItems("no query has a relevant (same-label) item in the gallery")
    metrics = np.concatenate(per_query)  # (Q', 5)
    classes = np.concatenate(query_class)  # (Q',)
    means = metrics.mean(axis=0)
    per_class: dict[str, dict[str, float]] = {}
    for cid, name in enumerate(class_names):
        mask = classes == cid
        if mask.any():
            entry = dict(zip(METRIC_KEYS, map(float, metrics[mask].mean(axis=0)), strict=True))
            entry["n_queries"] = int(mask.sum())
            per_class[str(name)] = entry
    return RetrievalScores(
        **dict(zip(METRIC_KEYS, map(float, means), strict=True)),
        n_queries=n_scored,
        n_gallery=n_gallery,
        per_class=per_class,
        n_skipped=q.size - n_scored,
    )
