"""How well an approximate index finds the exact nearest neighbours, measured on the user's own vectors."""

from __future__ import annotations

import numpy as np

from core.index.shard_rows import gather_rows

_SCAN_ROWS = 65_536  # shard rows multiplied at a time by the exact scan


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over queries of |found ∩ truth| / |truth|, ignoring -1 padding in either.

    Args:
        found: (Q, k) ids from the approximate index.
        truth: (Q, k) ids of the exact k nearest.

    Returns:
        Recall in [0, 1] (1.0 when no query has any true neighbour).
    """
    found, truth = np.asarray(found), np.asarray(truth)
    scores = []
    for f, t in zip(found, truth, strict=True):
        want = set(t[t >= 0].tolist())
        if want:
            scores.append(len(want & set(f[f >= 0].tolist())) / len(want))
    return float(np.mean(scores)) if scores else 1.0


def exact_top_k(arrays: list[np.ndarray], queries: np.ndarray, k: int,
                exclude: np.ndarray | None = None) -> np.ndarray:
    """Exact top-k ids over shards read a chunk at a time (memory: Q x chunk scores).

    Args:
        arrays: (N_i, D) shards (memory-mapped), in id order.
        queries: (Q, D) unit rows.
        k: neighbours per query.
        exclude: (Q,) an id per query to leave out (the query's own row), or None.

    Returns:
        (Q, k) int64 ids, best first (-1 where fewer than k exist).
    """
    q = queries.shape[0]
    best_s = np.full((q, k), -np.inf, np.float32)
    best_i = np.full((q, k), -1, np.int64)
    offset = 0
    for shard in arrays:
        for start in range(0, shard.shape[0], _SCAN_ROWS):
            chunk = np.asarray(shard[start:start + _SCAN_ROWS], np.float32)  # (C, D)
            sims = queries @ chunk.T  # (Q, C)
            ids = np.arange(offset + start, offset + start + chunk.shape[0])
            if exclude is not None:
                sims[ids[None, :] == exclude[:, None]] = -np.inf
            all_s = np.concatenate([best_s, sims], axis=1)
            all_i = np.concatenate([best_i, np.broadcast_to(ids, sims.shape)], axis=1)
            top = np.argsort(-all_s, axis=1, kind="stable")[:, :k]
            best_s = np.take_along_axis(all_s, top, 1)
            best_i = np.take_along_axis(all_i, top, 1)
        offset += shard.shape[0]
    return np.where(np.isfinite(best_s), best_i, -1)


def sample_recall(index, arrays: list[np.ndarray], n_queries: int = 200, k: int = 10,
                  seed: int = 0) -> dict:
    """Recall@k of `index` against the exact answer, for a random sample of its own rows.

    Each sampled row is a query; its own id is left out of both answers.

    Args:
        index: a VectorIndex over exactly the rows of `arrays`, in order.
        arrays: the shards the index was built from.
        n_queries: rows sampled (fewer when the index is smaller).
        k: neighbours compared.
        seed: sample seed.

    Returns:
        {"recall_at_10": r, "queries": Q, "k": k}, the key named for k.
    """
    n = index.ntotal
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(n_queries, n), replace=False))
    queries = gather_rows(arrays, rows)  # (Q, D)
    truth = exact_top_k(arrays, queries, k, exclude=rows)
    found = index.search(queries, k + 1).ids  # (Q, k + 1)
    mine = []
    for own, ids in zip(rows, found, strict=True):
        ids = ids[ids != own][:k]
        mine.append(np.pad(ids, (0, k - ids.size), constant_values=-1))
    return {f"recall_at_{k}": round(recall_at_k(np.array(mine), truth), 4),
            "queries": int(rows.size), "k": k}
