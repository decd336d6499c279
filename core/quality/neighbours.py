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
        (indices, similarities), both (N, k'), k' = min(k, N - 1); ties go to the lower index.
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
        # stable sort on -s keeps ties in index order, so results do not depend on `block`
        order = np.argsort(-s, axis=1, kind="stable")[:, :k]  # (b, k)
        idx[start:start + block] = order
        sims[start:start + block] = np.take_along_axis(s, order, axis=1)
    return idx, sims
