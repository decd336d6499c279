"""Outliers: films far from every neighbour in the run's embedding.

A film's score is its mean cosine distance (1 - cosine) to its k nearest other films; a film
is listed when its score lies above Tukey's upper fence of the run's scores (Q3 + 1.5 IQR,
Tukey 1977), most isolated first. Lists what fastdup calls outliers: scans of something else,
films of another view or collection, corrupted exports.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.quality.findings import Finding, FindingList

K = 5
FENCE = 1.5  # Tukey's k
TITLE = "Outliers"
MEANING = ("Far from every neighbour: mean cosine distance to the film's nearest films above "
           "the run's upper fence (Q3 + 1.5 IQR)")


def knn_distance(similarities: np.ndarray) -> np.ndarray:
    """Mean cosine distance of each row to its neighbours. (N, k) similarities -> (N,)."""
    s = np.asarray(similarities, dtype=np.float64)
    if s.size == 0:
        return np.zeros(s.shape[0])
    return 1.0 - s.mean(axis=1)


def upper_fence(scores: np.ndarray, k: float = FENCE) -> float:
    """Tukey's upper fence Q3 + k (Q3 - Q1) of `scores` (linear-interpolated quartiles);
    +inf for no scores."""
    v = np.asarray(scores, dtype=np.float64)
    if v.size == 0:
        return float("inf")
    q1, q3 = np.percentile(v, [25, 75])
    return float(q3 + k * (q3 - q1))


def find_outliers(paths: Sequence[str], labels: Sequence[str], similarities: np.ndarray,
                  limit: int | None = None) -> FindingList:
    """Films whose k-NN distance lies above the upper fence, most isolated first.

    Args:
        paths, labels: the run's films, one per row.
        similarities: (N, k) cosine to each film's nearest other films (`nearest_neighbours`).
        limit: keep at most this many (None: all).
    """
    if len(paths) < 3 or similarities.shape[1] == 0:
        return FindingList("outliers", TITLE, MEANING, skipped="fewer than 3 films: no neighbours to compare")
    scores = knn_distance(similarities)
    fence = upper_fence(scores)
    median = float(np.median(scores))
    k = similarities.shape[1]
    rows = sorted(np.flatnonzero(scores > fence), key=lambda r: (-scores[r], paths[r]))
    findings = tuple(Finding(paths[r], labels[r], round(float(scores[r]), 4),
                             f"mean cosine distance {scores[r]:.3f} to its {k} nearest "
                             f"(run median {median:.3f}, fence {fence:.3f})", "distance")
                     for r in rows[:limit])
    return FindingList("outliers", TITLE, MEANING, findings)
