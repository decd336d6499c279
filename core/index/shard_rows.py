"""Rows of embedding shards read by id, without loading the shards (memory-mapped .npy files)."""

from __future__ import annotations

import numpy as np


def gather_rows(arrays: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
    """Rows of several (N_i, D) arrays (e.g. memory-mapped shards) stacked end to end.

    Args:
        arrays: the shards, in id order; global id g is row g - offset_i of shard i.
        rows: (S,) int global ids, in any order.

    Returns:
        (S, D) float32 in the order of `rows`; only those rows are read from disk.
    """
    rows = np.asarray(rows, dtype=np.int64)
    offsets = np.cumsum([0] + [a.shape[0] for a in arrays])  # (S + 1,)
    if rows.size and (rows.min() < 0 or rows.max() >= offsets[-1]):
        raise ValueError(f"row ids must lie in [0, {offsets[-1]})")
    out = np.empty((rows.size, arrays[0].shape[1]), np.float32)
    which = np.searchsorted(offsets, rows, side="right") - 1  # (S,) shard of each row
    for i in np.unique(which):
        sel = np.flatnonzero(which == i)
        local = rows[sel] - offsets[i]
        order = np.argsort(local)  # sorted reads from a memory map
        out[sel[order]] = arrays[i][local[order]]
    return out
