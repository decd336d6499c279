"""FAISS inner-product index over L2-normalised embeddings, saved with a run.

Inner product on unit vectors is cosine similarity. Two kinds:
- 'exact': `faiss.IndexFlatIP`, brute force with BLAS; right up to a few hundred thousand
  vectors (4 * D bytes per vector).
- 'hnsw': `faiss.IndexHNSWFlat(d, M, METRIC_INNER_PRODUCT)`, a graph index for millions of
  vectors; approximate, with recall set by `efSearch` at query time. It stores the vectors
  plus about 8 * M bytes of links per vector.
- 'ivfpq': FAISS IVF-PQ (optionally with an OPQ rotation), trained on a sample, for tens of
  millions of vectors: about 72 bytes a vector at D=512 (`core.index.ivfpq`). Approximate, and
  its scores are decoded from compressed codes: callers comparing scores to a threshold
  re-score its candidates exactly (`core.index.refine`).
'auto' picks exact below `exact_below` vectors, HNSW up to `ivfpq_from`, IVF-PQ above.

The settings file says the index's kind; files written before IVF-PQ (format 1) still load.

`save(path)` writes the FAISS file at `path` and its settings (kind, M, efSearch) beside it
in `path + '.json'`, so `load` restores the search settings FAISS does not persist.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import faiss
import numpy as np

from core.files import atomic_write_json, atomic_write_with
from core.index import ivfpq
from core.index.shard_rows import gather_rows

KINDS = ("exact", "hnsw", "ivfpq")
_NORM_TOL = 1e-2
_FORMAT = 2  # 2: adds nprobe and the IVF-PQ settings; format 1 files load unchanged
EXACT_BELOW = 200_000
# Past 1M vectors 'auto' builds IVF-PQ: at 1M x 512 HNSW holds ~2.3 GB and builds for tens of
# minutes on 2 cores, IVF-PQ ~72 MB (benchmarks/README.md, "Scaling up").
IVFPQ_FROM = 1_000_000
_ADD_CHUNK = 65_536  # rows copied to float32 at a time when streaming shards
# Below this many queries FAISS's flat index scans on one thread per query; one BLAS product
# over its stored rows uses every core instead (FAISS switches to BLAS itself at 20 queries).
_FEW_QUERIES = 20


class Neighbours(NamedTuple):
    """Top-k search result; unpacks as `(scores, ids)`.

    scores: (Q, k) float32 cosine similarities, best first, -inf where padded.
    ids: (Q, k) int64 positions in the index, -1 where padded (k > ntotal, or HNSW found fewer).
    """

    scores: np.ndarray
    ids: np.ndarray


def validate_vectors(
    vectors: np.ndarray, dim: int | None = None, name: str = "vectors"
) -> np.ndarray:
    """Check an embedding matrix and return it as contiguous float32.

    Args:
        vectors: (N, D) array of L2-normalised rows (N may be 0).
        dim: expected D, or None to accept any D >= 1.
        name: what to call the array in error messages.

    Returns:
        (N, D) C-contiguous float32 array (the input itself when already so).

    Raises:
        ValueError: wrong shape or dimension, NaN/inf values, or rows not of unit norm.
    """
    arr = np.asarray(vectors)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be a 2-D (N, D) array, got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} have dimension {arr.shape[1]}, the index has {dim}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must be floating point, got {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    if arr.shape[0]:
        norms = np.linalg.norm(arr, axis=1)  # (N,)
        worst = int(np.abs(norms - 1.0).argmax())
        if abs(norms[worst] - 1.0) > _NORM_TOL:
            raise ValueError(
                f"{name} must be L2-normalised: row {worst} has norm {norms[worst]:.4f}"
            )
    return arr


def _choose_kind(kind: str, n: int, exact_below: int, ivfpq_from: int = IVFPQ_FROM) -> str:
    if kind == "auto":
        return "exact" if n < exact_below else "hnsw" if n < ivfpq_from else "ivfpq"
    if kind not in KINDS:
        raise ValueError(f"unknown index kind {kind!r}; choose auto, exact, hnsw or ivfpq")
    return kind


class VectorIndex:
    """A FAISS cosine-similarity index with its kind and search settings."""

    def __init__(self, index: faiss.Index, kind: str, hnsw_m: int = 32, ef_search: int = 128,
                 nprobe: int = 32):
        """Wrap an existing FAISS index; prefer `create`, `build` or `load`."""
        self._index = index
        self._kind = kind
        self._hnsw_m = hnsw_m
        self.ef_search = ef_search
        self.generation = ""  # the artifact set it was saved in or loaded from
        self.nprobe = nprobe
        self.report: dict = {}  # what the build measured (recall@10 on a sample), saved with it

    @property
    def nprobe(self) -> int:
        """IVF-PQ cells visited per query (unused for other kinds)."""
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        if int(value) < 1:
            raise ValueError(f"nprobe must be >= 1, got {value}")
        self._nprobe = int(value)

    @property
    def ef_search(self) -> int:
        """HNSW candidate list size at query time (unused for 'exact')."""
        return self._ef_search

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        if int(value) < 1:
            raise ValueError(f"ef_search must be >= 1, got {value}")
        self._ef_search = int(value)

    @classmethod
    def create(
        cls,
        dim: int,
        kind: str = "exact",
        *,
        hnsw_m: int = 32,
        ef_search: int = 128,
        ef_construction: int = 100,
    ) -> VectorIndex:
        """Make an empty index to `add` vectors to.

        Args:
            dim: vector dimension D.
            kind: 'exact' or 'hnsw'.
            hnsw_m: HNSW links per node (memory ~8*M bytes/vector; higher = better recall).
            ef_search: HNSW candidate list size at query time (higher = better recall, slower).
            ef_construction: HNSW candidate list size while building.

        Returns:
            An empty VectorIndex.
        """
        if dim < 1:
            raise ValueError(f"dimension must be >= 1, got {dim}")
        kind = _choose_kind(kind, 0, 1)
        if kind == "ivfpq":
            raise ValueError("an IVF-PQ index is trained on its vectors: use build or build_from_shards")
        if kind == "exact":
            return cls(faiss.IndexFlatIP(dim), "exact", hnsw_m, ef_search)
        if hnsw_m < 2 or ef_search < 1 or ef_construction < 1:
            raise ValueError("hnsw_m must be >= 2 and ef_search, ef_construction >= 1")
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        return cls(index, "hnsw", hnsw_m, ef_search)

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        kind: str = "auto",
        *,
        exact_below: int = EXACT_BELOW,
        hnsw_m: int = 32,
        ef_search: int = 128,
        ef_construction: int = 100,
        ivfpq_from: int = IVFPQ_FROM,
        opq: bool = False,
    ) -> VectorIndex:
        """Build an index over a matrix of embeddings.

        Args:
            vectors: (N, D) float32 L2-normalised embeddings; row i gets id i.
            kind: 'auto' (exact if N < exact_below, HNSW if N < ivfpq_from, else IVF-PQ),
                'exact', 'hnsw' or 'ivfpq'.
            exact_below: size at which 'auto' switches to HNSW.
            hnsw_m, ef_search, ef_construction: HNSW settings (see `create`).
            ivfpq_from: size at which 'auto' switches to IVF-PQ.
            opq: give an IVF-PQ index an OPQ rotation.

        Returns:
            The filled VectorIndex.
        """
        vecs = validate_vectors(vectors)
        if vecs.shape[0] == 0:
            raise ValueError("cannot build an index from zero vectors")
        chosen = _choose_kind(kind, vecs.shape[0], exact_below, ivfpq_from)
        if chosen == "ivfpq":
            index = cls._trained_ivfpq(vecs.shape[0], vecs.shape[1], lambda rows: vecs[rows], opq)
        else:
            index = cls.create(vecs.shape[1], chosen, hnsw_m=hnsw_m, ef_search=ef_search,
                               ef_construction=ef_construction)
        index.add(vecs)
        return index

    @classmethod
    def _trained_ivfpq(cls, n: int, dim: int, rows_of, opq: bool) -> VectorIndex:
        """An empty IVF-PQ index trained on a sample; rows_of(sorted ids) -> (S, D) vectors."""
        settings = ivfpq.choose_settings(n, dim, opq=opq)
        index = ivfpq.new_index(dim, settings)
        sample = validate_vectors(rows_of(ivfpq.train_rows(n, settings)), dim, "training sample")
        index.train(sample)
        return cls(index, "ivfpq", nprobe=settings.nprobe)

    @classmethod
    def build_from_shards(
        cls,
        shard_paths: Iterable[str | os.PathLike],
        kind: str = "auto",
        *,
        exact_below: int = EXACT_BELOW,
        hnsw_m: int = 32,
        ef_search: int = 128,
        ef_construction: int = 100,
        ivfpq_from: int = IVFPQ_FROM,
        opq: bool = False,
    ) -> VectorIndex:
        """Build an index from .npy shards without loading them all into memory.

        Each shard is memory-mapped and added in chunks, so peak memory is the index plus
        one chunk (plus, for IVF-PQ, its training sample). Ids follow the shard order:
        shard 0 rows first.

        Args:
            shard_paths: .npy files, each an (N_i, D) array of L2-normalised rows, same D.
            kind, exact_below, hnsw_m, ef_search, ef_construction, ivfpq_from, opq: as in
                `build`, with 'auto' deciding on the total row count.

        Returns:
            The filled VectorIndex.
        """
        shards = []
        for path in shard_paths:
            try:
                shard = np.load(path, mmap_mode="r")  # header only; rows stay on disk
            except (OSError, ValueError) as err:
                raise ValueError(f"cannot read embedding shard {path}: {err}") from err
            if shard.ndim != 2 or shard.shape[1] == 0:
                raise ValueError(f"embedding shard {path} is not an (N, D) array: {shard.shape}")
            if shards and shard.shape[1] != shards[0][1].shape[1]:
                raise ValueError(
                    f"embedding shard {path} has dimension {shard.shape[1]}, "
                    f"{shards[0][0]} has {shards[0][1].shape[1]}"
                )
            shards.append((path, shard))
        if not shards:
            raise ValueError("no embedding shards given")
        total = sum(shard.shape[0] for _, shard in shards)
        if total == 0:
            raise ValueError("the embedding shards hold zero vectors")
        dim = shards[0][1].shape[1]
        chosen = _choose_kind(kind, total, exact_below, ivfpq_from)
        if chosen == "ivfpq":
            arrays = [shard for _, shard in shards]
            index = cls._trained_ivfpq(total, dim, lambda rows: gather_rows(arrays, rows), opq)
        else:
            index = cls.create(dim, chosen, hnsw_m=hnsw_m, ef_search=ef_search,
                               ef_construction=ef_construction)
        for path, shard in shards:
            for start in range(0, shard.shape[0], _ADD_CHUNK):
                chunk = shard[start : start + _ADD_CHUNK]  # (<=chunk, D) read from disk
                try:
                    index.add(chunk)
                except ValueError as err:
                    raise ValueError(f"embedding shard {path}, rows from {start}: {err}") from err
        return index

    def add(self, vectors: np.ndarray) -> None:
        """Append vectors; they get ids ntotal, ntotal + 1, ...

        Args:
            vectors: (N, D) float32 L2-normalised rows.
        """
        vecs = validate_vectors(vectors, self.dim)
        if vecs.shape[0]:
            self._index.add(vecs)

    def search(self, queries: np.ndarray, k: int) -> Neighbours:
        """Find the k most similar indexed vectors for each query.

        Args:
            queries: (Q, D) or (D,) float32 L2-normalised queries.
            k: neighbours per query, >= 1. FAISS is asked for min(k, ntotal); columns past
                that are padded with id -1 and score -inf.

        Returns:
            Neighbours(scores (Q, k), ids (Q, k)), best first.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        q = np.asarray(queries)
        q = validate_vectors(q[None, :] if q.ndim == 1 else q, self.dim, name="queries")
        scores = np.full((q.shape[0], k), -np.inf, dtype=np.float32)  # (Q, k)
        ids = np.full((q.shape[0], k), -1, dtype=np.int64)  # (Q, k)
        k_eff = min(k, self.ntotal)
        if k_eff == 0 or q.shape[0] == 0:
            return Neighbours(scores, ids)
        if self._kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k_eff))
            found_s, found_i = self._index.search(q, k_eff, params=params)  # (Q, k_eff)
        elif self._kind == "ivfpq":
            params = ivfpq.search_params(self._index, self.nprobe)
            found_s, found_i = self._index.search(q, k_eff, params=params)  # (Q, k_eff)
        elif q.shape[0] < _FEW_QUERIES:
            found_s, found_i = self._exact_few(q, k_eff)  # (Q, k_eff)
        else:
            found_s, found_i = self._index.search(q, k_eff)  # (Q, k_eff)
        scores[:, :k_eff] = np.where(found_i >= 0, found_s, -np.inf)
        ids[:, :k_eff] = found_i
        return Neighbours(scores, ids)

    def _exact_few(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k for a few queries by one matrix product over the index's own rows.

        The neighbours and scores of `IndexFlatIP.search`, with equal scores in id order (FAISS
        orders ties its own way); faster for a single query on several cores (`make bench`,
        query.exact).
        """
        n, d = self.ntotal, self.dim
        rows = faiss.rev_swig_ptr(self._index.get_xb(), n * d).reshape(n, d)  # a view, no copy
        sims = q @ rows.T  # (Q, N)
        kth = -np.partition(-sims, k - 1, axis=1)[:, k - 1]  # (Q,) k-th best score of each row
        found_s = np.empty((q.shape[0], k), np.float32)
        found_i = np.empty((q.shape[0], k), np.int64)
        for r in range(q.shape[0]):
            ids = np.flatnonzero(sims[r] >= kth[r])  # the top k and any ties with the k-th
            best = ids[np.lexsort((ids, -sims[r, ids]))[:k]]  # best score first, then smaller id
            found_s[r], found_i[r] = sims[r, best], best
        return found_s, found_i

    @property
    def kind(self) -> str:
        """'exact', 'hnsw' or 'ivfpq'."""
        return self._kind

    @property
    def ntotal(self) -> int:
        """Number of indexed vectors."""
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        """Vector dimension D."""
        return int(self._index.d)

    @property
    def hnsw_m(self) -> int:
        """HNSW links per node (unused for 'exact')."""
        return self._hnsw_m

    def save(self, path: str | os.PathLike, generation: str = "") -> None:
        """Write the index to `path` and its settings to `path + '.json'`, each atomically.

        Args:
            path: destination file, e.g. a run's artifacts/<generation>/index.faiss.
            generation: the artifact set it belongs to (core.index.artifacts), kept in the
                settings so a reader can tell an index from another set.

        Raises:
            OSError: the file cannot be written (disk full, read-only): one line.
        """
        path = Path(path)
        meta = {
            "format": _FORMAT,
            "kind": self._kind,
            "dim": self.dim,
            "ntotal": self.ntotal,
            "hnsw_m": self._hnsw_m,
            "ef_search": self.ef_search,
            "nprobe": self.nprobe,
            "faiss_version": faiss.__version__,
            "generation": generation,
            **({"report": self.report} if self.report else {}),
        }
        if self._kind == "ivfpq":
            settings = ivfpq.settings_of(self._index, self.nprobe)
            meta["ivfpq"] = {"nlist": settings.nlist, "m": settings.m, "opq": settings.opq}
        if self._kind == "hnsw":
            self._index.hnsw.efSearch = self.ef_search  # so a bare faiss.read_index has it too

        def write(tmp: Path) -> None:
            try:
                faiss.write_index(self._index, str(tmp))
            except RuntimeError as err:  # FAISS reports a failed write (disk full) this way
                raise OSError(errno.EIO, f"cannot write the index {path}: "
                              f"{str(err).strip().splitlines()[-1][:200]}") from None

        atomic_write_with(path, write)
        atomic_write_json(_meta_path(path), meta)
        self.generation = generation

    @classmethod
    def load(cls, path: str | os.PathLike) -> VectorIndex:
        """Read an index written by `save`.

        Args:
            path: the FAISS file given to `save`.

        Returns:
            The VectorIndex with its saved kind and efSearch.

        Raises:
            FileNotFoundError: the index or its settings file is missing.
            ValueError: either file is unreadable or they disagree.
        """
        path = Path(path)
        meta_path = _meta_path(path)
        for p in (path, meta_path):
            if not p.is_file():
                raise FileNotFoundError(f"no index file at {p}")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            kind, hnsw_m, ef_search = meta["kind"], int(meta["hnsw_m"]), int(meta["ef_search"])
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"index settings {meta_path} are unreadable: {err}") from err
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as err:
            raise ValueError(f"index file {path} is unreadable or corrupt") from err
        if kind not in KINDS or not _holds(index, kind):
            raise ValueError(f"index file {path} does not hold a {kind!r} index")
        if index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise ValueError(f"index file {path} does not use inner-product similarity")
        if index.ntotal != meta.get("ntotal") or index.d != meta.get("dim"):
            raise ValueError(f"index file {path} does not match its settings {meta_path}")
        loaded = cls(index, kind, hnsw_m, ef_search, int(meta.get("nprobe", 32)))
        loaded.generation = str(meta.get("generation") or "")
        loaded.report = dict(meta.get("report") or {})
        return loaded

    def __repr__(self) -> str:
        return f"VectorIndex(kind={self._kind!r}, ntotal={self.ntotal}, dim={self.dim})"


def _holds(index: faiss.Index, kind: str) -> bool:
    """Whether a FAISS index read from disk is of the kind its settings file names."""
    if kind == "ivfpq":
        try:
            ivfpq.ivf(index)
        except (ValueError, RuntimeError):
            return False
        return True
    return isinstance(index, faiss.IndexHNSWFlat if kind == "hnsw" else faiss.IndexFlatIP)


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")
