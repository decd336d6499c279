"""The k nearest other films of every film in a run's embedding (exact cosine, in blocks)."""

from __future__ import annotations

import numpy as np

BLOCK = 1024  # rows per block: a (1024, N) float32 similarity block is 20 MB at N = 5,000


def nearest_neighbours(vectors: np.ndarray, k: int, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k most similar other rows, most similar first (a row is never its own neighbour).

    Args:
        vectors: (N, D) unit rows (cosine = dot product).
        k: neighbours per row; capped at N - 1.
        block: rows compared at a time (bounds memory at block x N).

    Returns:
        (indices, similarities), both (N, k'), k' = min(k, N - 1); equal similarities in
        index order.
    """
    x = np.asarray(vectors, dtype=np.float32)
    n = x.shape[0]
    k = max(0, min(int(k), n - 1))
    idx = np.zeros((n, k), dtype=np.int64)
    sims = np.zeros((n, k), dtype=np.float32)
    if k == 0:
        return idx, sims
    for start in range(0, n, block):
        s = x[start:start + block] @ x.T  # (b, N)
        rows = np.arange(s.shape[0])
        s[rows, start + rows] = -np.inf  # not its own neighbour
        kept = np.argpartition(-s, k - 1, axis=1)[:, :k]  # (b, k): the k largest, unordered
        vals = np.take_along_axis(s, kept, axis=1)
        order = np.lexsort((kept, -vals), axis=1)  # most similar first, ties by index
        idx[start:start + block] = np.take_along_axis(kept, order, axis=1)
        sims[start:start + block] = np.take_along_axis(vals, order, axis=1)
    return idx, sims
