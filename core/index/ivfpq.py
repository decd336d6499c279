"""IVF-PQ: the FAISS index for tens of millions of vectors, trained on a sample.

An inverted file (IVF) splits the space into `nlist` cells by k-means; a search visits the
`nprobe` cells nearest the query. Each vector is stored as a product-quantisation (PQ) code of
`m` bytes (the vector cut into m pieces, each replaced by the nearest of 256 centroids), plus
its 8-byte id: 72 bytes a vector at D=512 (m=64) instead of 2,048 for the exact index.
Optionally an OPQ rotation, learnt on the same sample, makes the pieces more alike in
variance, which helps PQ on embeddings whose variance sits in a few directions.

Settings: nlist ~ sqrt(N) (a power of two, 16..65,536; FAISS's guidelines allow 1-16 x sqrt(N),
and the low end keeps k-means cheap on a CPU), trained on >= 39 * nlist sample rows (at least
50,000), nprobe = nlist / 16 (8..128), m = D / 4 capped at 64 pieces. Scores returned by the
index are approximate (decoded from the codes); callers that compare scores to a threshold
re-score candidates exactly (`core.index.refine`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import faiss
import numpy as np

MIN_TRAIN = 1_000  # fewer rows than this cannot train 256 PQ centroids per piece sensibly
NBITS = 8  # bits per PQ code piece: 256 centroids
MAX_TRAIN_PER_CELL = 256  # FAISS samples k-means input down to this many rows per centroid


@dataclass(frozen=True)
class IVFPQSettings:
    """How an IVF-PQ index is shaped: cells, code bytes, rotation and cells visited per search."""

    nlist: int
    m: int
    opq: bool = False
    nprobe: int = 32

    def factory(self, dim: int) -> str:
        """The faiss.index_factory string, e.g. 'OPQ64,IVF4096,PQ64'."""
        rotation = f"OPQ{self.m}," if self.opq else ""
        return f"{rotation}IVF{self.nlist},PQ{self.m}"

    def bytes_per_vector(self) -> int:
        """Code bytes plus the 8-byte id each inverted list stores per vector."""
        return self.m * NBITS // 8 + 8

    def fixed_bytes(self, dim: int) -> int:
        """Memory that does not grow with N: coarse centroids, PQ centroids, OPQ matrix."""
        pq = self.m * (1 << NBITS) * (dim // self.m) * 4
        return self.nlist * dim * 4 + pq + (dim * dim * 4 if self.opq else 0)


def choose_settings(n: int, dim: int, *, opq: bool = False, nprobe: int | None = None) -> IVFPQSettings:
    """IVF-PQ settings for `n` vectors of dimension `dim` (see the module notes).

    Raises:
        ValueError: fewer than MIN_TRAIN vectors (use the exact index), or no usable m.
    """
    if n < MIN_TRAIN:
        raise ValueError(f"an IVF-PQ index needs at least {MIN_TRAIN:,} vectors to train, "
                         f"got {n:,}; use the exact index")
    nlist = 1 << max(4, min(16, round(math.log2(math.sqrt(n)))))
    nlist = min(nlist, max(16, 1 << int(math.log2(n // 39))))  # >= 39 training rows per cell
    m = _pieces(dim)
    probe = nprobe if nprobe is not None else max(8, min(128, nlist // 16))
    return IVFPQSettings(nlist, m, opq, min(probe, nlist))


def _pieces(dim: int) -> int:
    """The largest m <= min(64, D / 4) that divides D (PQ cuts D into m equal pieces)."""
    for m in range(min(64, max(1, dim // 4)), 0, -1):
        if dim % m == 0:
            return m
    return 1


def train_rows(n: int, settings: IVFPQSettings, seed: int = 0) -> np.ndarray:
    """Sorted row ids of the training sample: enough for k-means, no more than it will use."""
    want = min(n, max(50_000, 64 * settings.nlist), MAX_TRAIN_PER_CELL * settings.nlist)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=want, replace=False)) if want < n else np.arange(n)


def new_index(dim: int, settings: IVFPQSettings) -> faiss.Index:
    """An untrained inner-product IVF-PQ index (wrapped in the OPQ transform when asked)."""
    index = faiss.index_factory(dim, settings.factory(dim), faiss.METRIC_INNER_PRODUCT)
    # index_factory turns on polysemous training (Hamming-distance filtering we never use);
    # it multiplies training time by ~20.
    ivf(index).do_polysemous_training = False
    return index


def ivf(index: faiss.Index) -> faiss.IndexIVFPQ:
    """The IVF-PQ inside `index` (itself, or under an OPQ pre-transform)."""
    try:
        inner = faiss.downcast_index(faiss.extract_index_ivf(index))
    except RuntimeError:
        raise ValueError("not an IVF-PQ index") from None
    if not isinstance(inner, faiss.IndexIVFPQ):
        raise ValueError("not an IVF-PQ index")
    return inner


def search_params(index: faiss.Index, nprobe: int) -> faiss.SearchParameters:
    """Per-call search parameters for `index` (no shared state: concurrent searches are safe)."""
    params = faiss.SearchParametersIVF(nprobe=nprobe)
    if isinstance(index, faiss.IndexPreTransform):
        return faiss.SearchParametersPreTransform(index_params=params)
    return params


def settings_of(index: faiss.Index, nprobe: int) -> IVFPQSettings:
    """Read the settings back from a loaded index."""
    inner = ivf(index)
    return IVFPQSettings(int(inner.nlist), int(inner.pq.M), isinstance(index, faiss.IndexPreTransform),
                         nprobe)
