"""Near-duplicate candidate pairs (k nearest neighbours above a cosine threshold) and groups.

Never builds the N x N similarity matrix. Without an index, similarities are computed exactly
one (block x block) tile at a time over the upper triangle only, since sim(a, b) = sim(b, a);
each tile feeds the running top-k of both its rows and its columns. A row's running k-th
best score (or the threshold, if higher) is its floor: once a tile's maximum in a row is
below the floor, nothing else in that row is looked at, so past the first tiles the cost is
the matrix product. Memory is the vectors, a few tiles and an (N, k) table.

With an index (e.g. an HNSW `VectorIndex` for millions of images) the index is searched for
each block of queries instead: approximate, but sub-quadratic.

Neighbour order is (score descending, id ascending), so ties are broken the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from core.index.vectors import VectorIndex, validate_vectors


@dataclass(frozen=True)
class DuplicatePair:
    """Two images whose embeddings are close: i < j are row ids, score their cosine.

    Row ids are i/j throughout (as in `CandidatePair`, whose a/b are the images' paths).
    """

    i: int
    j: int
    score: float


@dataclass(frozen=True)
class PairArrays:
    """Candidate pairs as parallel arrays, sorted by score descending, then i, then j.

    i: (P,) int64, j: (P,) int64 row ids with i < j; score: (P,) float32 cosine similarity.
    """

    i: np.ndarray
    j: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return int(self.i.size)

    def to_pairs(self) -> list[DuplicatePair]:
        """Return the pairs as DuplicatePair objects, in the same order."""
        return [
            DuplicatePair(i, j, s)
            for i, j, s in zip(self.i.tolist(), self.j.tolist(), self.score.tolist(), strict=True)
        ]


class _TopK:
    """Running top-k neighbours per row: (N, k) scores and ids, best first, -inf/-1 if empty."""

    def __init__(self, n: int, k: int, threshold: float):
        self.k = k
        self.threshold = np.float32(threshold)
        self.scores = np.full((n, k), -np.inf, dtype=np.float32)  # (N, k)
        self.ids = np.full((n, k), -1, dtype=np.int64)  # (N, k)

    def floor(self, start: int, stop: int) -> np.ndarray:
        """Lowest score that can still enter each row's top-k: (stop - start,) float32."""
        return np.maximum(self.scores[start:stop, -1], self.threshold)

    def offer(self, rows: np.ndarray, cols: np.ndarray, scores: np.ndarray) -> None:
        """Merge candidate (row, col, score) triples into the table."""
        if rows.size == 0:
            return
        touched = np.unique(rows)  # sorted
        all_r = np.concatenate([np.repeat(touched, self.k), rows])
        all_c = np.concatenate([self.ids[touched].ravel(), cols])
        all_s = np.concatenate([self.scores[touched].ravel(), scores])
        order = np.lexsort((all_c, -all_s, all_r))  # by row, then score desc, then id
        r_sorted = all_r[order]
        rank = np.arange(order.size) - np.searchsorted(r_sorted, r_sorted)
        keep = order[rank < self.k]  # exactly k per touched row, in `touched` order
        self.scores[touched] = all_s[keep].reshape(-1, self.k)
        self.ids[touched] = all_c[keep].reshape(-1, self.k)

    def scan(
        self, sims: np.ndarray, own_start: int, other_start: int, owners_on_rows: bool
    ) -> None:
        """Offer the entries of one tile that can enter their owner's top-k.

        Args:
            sims: (R, C) similarities of ids own_start.. (rows) against other_start.. (columns),
                or the reverse when `owners_on_rows` is False. Column owners are handled in
                place: passes over a transposed view cost several times more.
            own_start: id of the first owner.
            other_start: id of the first candidate.
            owners_on_rows: whether the owners are the rows (else the columns) of `sims`.
        """
        axis = 1 if owners_on_rows else 0  # the candidates' axis
        n_own = sims.shape[1 - axis]
        floor = self.floor(own_start, own_start + n_own)  # (n_own,)
        live = np.flatnonzero(sims.max(axis=axis) >= floor)  # owners with something to offer
        if live.size == 0:
            return
        if live.size * 4 < n_own:  # few live owners: copy just them out
            tile = sims[live] if owners_on_rows else sims[:, live]
            floor, owner_ids = floor[live], live
        else:
            tile, owner_ids = sims, np.arange(n_own)
        mask = tile >= (floor[:, None] if owners_on_rows else floor[None, :])
        if np.count_nonzero(mask) > self.k * owner_ids.size:
            # Dense (a low threshold, early tiles): cut owners to their tile top-k first.
            heavy = np.flatnonzero(np.count_nonzero(mask, axis=axis) > self.k)
            kth = self._kth(tile, heavy, owners_on_rows)
            if owners_on_rows:
                mask[heavy] &= tile[heavy] >= kth[:, None]
            else:
                mask[:, heavy] &= tile[:, heavy] >= kth[None, :]
        flat = np.flatnonzero(mask)  # ~10x faster than 2-D np.nonzero
        r, c = np.divmod(flat, tile.shape[1])
        scores = tile.ravel()[flat]
        own, other = (r, c) if owners_on_rows else (c, r)
        heavy = np.flatnonzero(np.bincount(own, minlength=owner_ids.size) > self.k)
        if heavy.size:
            # Only the tile's k best can matter; ties with the k-th stay for the merge to
            # break by id.
            kth = np.full(owner_ids.size, -np.inf, dtype=np.float32)
            kth[heavy] = self._kth(tile, heavy, owners_on_rows)
            keep = scores >= kth[own]
            own, other, scores = own[keep], other[keep], scores[keep]
        self.offer(own_start + owner_ids[own], other_start + other, scores)

    def _kth(self, tile: np.ndarray, owners: np.ndarray, owners_on_rows: bool) -> np.ndarray:
        """k-th best score of each given owner in the tile: (len(owners),)."""
        vals = tile[owners] if owners_on_rows else tile[:, owners].T  # (H, candidates)
        cut = vals.shape[1] - self.k
        return np.partition(vals, cut, axis=1)[:, cut]


def _exact_neighbours(vecs: np.ndarray, k: int, threshold: float, block: int) -> _TopK:
    n = vecs.shape[0]
    table = _TopK(n, k, threshold)
    # One buffer for every tile: a fresh 64 MB array per tile costs as much in page faults
    # as the product itself at D = 128.
    buffer = np.empty(min(block, n) ** 2, dtype=np.float32)
    for i in range(0, n, block):
        rows = vecs[i : i + block]  # (Bi, D)
        for j in range(i, n, block):
            cols = vecs[j : j + block]  # (Bj, D)
            sims = buffer[: rows.shape[0] * cols.shape[0]].reshape(rows.shape[0], -1)
            np.matmul(rows, cols.T, out=sims)  # (Bi, Bj) one tile
            if i == j:
                np.fill_diagonal(sims, -np.inf)  # an image is not its own neighbour
            table.scan(sims, i, j, owners_on_rows=True)
            if i != j:
                table.scan(sims, j, i, owners_on_rows=False)  # the tile serves its columns too
    return table


def _index_neighbours(
    vecs: np.ndarray, index: VectorIndex, k: int, threshold: float, block: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, cols, scores = [], [], []
    for start in range(0, vecs.shape[0], block):
        found_s, found_i = index.search(vecs[start : start + block], k + 1)  # (B, k + 1)
        own = np.arange(start, start + found_i.shape[0])[:, None]  # (B, 1)
        # Self may be missing or not first when exact copies tie, so drop it by id.
        valid = (found_i >= 0) & (found_i != own)
        keep = valid & (np.cumsum(valid, axis=1) <= k) & (found_s >= np.float32(threshold))
        r, c = np.nonzero(keep)
        rows.append(own[r, 0])
        cols.append(found_i[r, c])
        scores.append(found_s[r, c])
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(scores)


def mine_pair_arrays(
    vectors: np.ndarray,
    threshold: float,
    k: int = 10,
    block: int = 4096,
    index: VectorIndex | None = None,
) -> PairArrays:
    """Find each image's k nearest neighbours with cosine >= threshold, as unordered pairs.

    A pair (a, b) is kept when b is among a's k nearest or a among b's, so it appears once
    however many directions found it.

    Args:
        vectors: (N, D) float32 L2-normalised embeddings; pair ids are row numbers.
        threshold: minimum cosine similarity, in [-1, 1].
        k: neighbours considered per image, >= 1.
        block: rows per tile (exact) or queries per search (index); memory grows as block^2.
        index: optional index over exactly these vectors, in the same order; if given it is
            searched instead of the exact tiled product (approximate for HNSW).

    Returns:
        PairArrays sorted by score descending, then i, then j.
    """
    vecs = validate_vectors(vectors)
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be a cosine in [-1, 1], got {threshold}")
    if k < 1 or block < 1:
        raise ValueError(f"k and block must be >= 1, got k={k}, block={block}")
    n = vecs.shape[0]
    if index is not None and (index.ntotal != n or index.dim != vecs.shape[1]):
        raise ValueError(
            f"index holds {index.ntotal} vectors of dimension {index.dim}, "
            f"expected {n} of dimension {vecs.shape[1]}"
        )
    if n < 2:
        empty = np.zeros(0, dtype=np.int64)
        return PairArrays(empty, empty.copy(), np.zeros(0, dtype=np.float32))
    if index is None:
        table = _exact_neighbours(vecs, k, threshold, block)
        r, c = np.nonzero(table.ids >= 0)  # the floor kept everything below threshold out
        rows, cols, scores = r.astype(np.int64), table.ids[r, c], table.scores[r, c]
    else:
        rows, cols, scores = _index_neighbours(vecs, index, k, threshold, block)
    a, b = np.minimum(rows, cols), np.maximum(rows, cols)
    # One entry per unordered pair: sort by key, best score first, keep the first of each key.
    key = a * n + b
    order = np.lexsort((-scores, key))
    first = np.ones(order.size, dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    a, b, scores = a[order[first]], b[order[first]], scores[order[first]]
    final = np.lexsort((b, a, -scores))
    return PairArrays(a[final], b[final], scores[final].astype(np.float32))


def mine_pairs(
    vectors: np.ndarray,
    threshold: float,
    k: int = 10,
    block: int = 4096,
    index: VectorIndex | None = None,
) -> list[DuplicatePair]:
    """Candidate near-duplicate pairs; `mine_pair_arrays` as a list of DuplicatePair.

    Args:
        vectors: (N, D) float32 L2-normalised embeddings.
        threshold: minimum cosine similarity, in [-1, 1].
        k: neighbours considered per image.
        block: rows per tile or queries per search.
        index: optional index over the same vectors (see `mine_pair_arrays`).

    Returns:
        Pairs with i < j, sorted by score descending, then (i, j).
    """
    return mine_pair_arrays(vectors, threshold, k=k, block=block, index=index).to_pairs()


def _as_edges(pairs: Iterable) -> np.ndarray:
    if isinstance(pairs, PairArrays):
        return np.stack([pairs.i, pairs.j], axis=1)
    if isinstance(pairs, np.ndarray):
        edges = pairs
    else:
        edges = [(p.i, p.j) if isinstance(p, DuplicatePair) else tuple(p) for p in pairs]
        edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2) if edges else np.zeros((0, 2))
    edges = np.asarray(edges)
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise ValueError(f"pairs must be (a, b) tuples, got shape {edges.shape}")
    return edges.astype(np.int64)


def connected_groups(
    n: int, pairs: Iterable[tuple[int, int]] | Iterable[DuplicatePair] | PairArrays | np.ndarray
) -> list[list[int]]:
    """Group images linked by pairs into connected components (a copied five times = one group).

    Args:
        n: number of images; ids lie in [0, n).
        pairs: (a, b) tuples, DuplicatePair objects, a PairArrays, or an (M, 2) int array.

    Returns:
        Groups of two or more ids, each sorted ascending; groups sorted by size descending,
        then by first member.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    edges = _as_edges(pairs)  # (M, 2)
    if edges.size == 0:
        return []
    if edges.min() < 0 or edges.max() >= n:
        raise ValueError(f"pair ids must lie in [0, {n}), got {edges.min()}..{edges.max()}")
    graph = coo_matrix(
        (np.ones(edges.shape[0], dtype=np.int8), (edges[:, 0], edges[:, 1])), shape=(n, n)
    )
    _, component = connected_components(graph, directed=False)  # (n,) component per id
    sizes = np.bincount(component)
    members = np.flatnonzero(sizes[component] >= 2)  # ascending ids
    members = members[np.argsort(component[members], kind="stable")]  # by component, ids kept
    bounds = np.flatnonzero(np.diff(component[members])) + 1
    groups = [g.tolist() for g in np.split(members, bounds)]
    return sorted(groups, key=lambda g: (-len(g), g[0]))
