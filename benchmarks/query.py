"""Top-10 query latency: the project's FAISS index (core.index.vectors) vs numpy brute force.

Latency is per single query (one user, one image), p50 and p99 over a few hundred queries.
Exact at 10k, 100k and 1M random unit vectors, 128 and 512 dims (the data does not matter to
an exact scan). HNSW recall@10 and latency against the exact answers, at 1M x 128 (100k in
--quick) on "low-rank" vectors: a 32-dim Gaussian latent mapped linearly to D dims plus noise,
a stand-in for image embeddings, which have a low intrinsic dimension. Uniform random unit
vectors, the worst case for any graph index (no structure at all), are measured at 100k in
the full run for contrast.
"""

from __future__ import annotations

import gc
import time

import faiss
import numpy as np

from benchmarks.common import LOWER, emit, note, percentile, random_unit_vectors
from core.index.vectors import VectorIndex

K = 10


def numpy_top_k(vectors: np.ndarray, q: np.ndarray, k: int = K) -> np.ndarray:
    """The reference: one matrix-vector product, argpartition, then sort the k best."""
    s = vectors @ q  # (N,)
    top = np.argpartition(-s, k)[:k]
    return top[np.argsort(-s[top])]


def _latencies_ms(fn, queries: np.ndarray) -> list[float]:
    fn(queries[0])  # warm-up (page in, thread pools)
    out = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t) * 1e3)
    return out


def _emit_latency(name: str, ours: list[float], ref: list[float] | None, ref_name: str | None,
                  **fields) -> None:
    for q in (50, 99):
        emit(f"{name}_p{q}", percentile(ours, q), "ms", reference=ref_name,
             reference_value=percentile(ref, q) if ref else None, better=LOWER, k=K, **fields)


def exact(n: int, dim: int, n_queries: int) -> None:
    note(f"query exact: {n} x {dim}")
    vectors = random_unit_vectors(n, dim, seed=1)
    queries = random_unit_vectors(n_queries, dim, seed=2)
    index = VectorIndex.build(vectors, "exact")
    ours = _latencies_ms(lambda q: index.search(q, K), queries)
    ref = _latencies_ms(lambda q: numpy_top_k(vectors, q), queries)
    _emit_latency("query.exact", ours, ref, "numpy brute force (matvec + argpartition)", n=n,
                  dim=dim, queries=n_queries, index=("core.index.vectors exact: FAISS IndexFlatIP rows, "
                         "one BLAS product below 20 queries"),
                  faiss_threads=faiss.omp_get_max_threads(),
                  target="p50 < 20 ms" if n == 100_000 else None,
                  bytes_per_vector=4 * dim)


def low_rank_unit_vectors(n: int, dim: int, latent: int = 32, seed: int = 0) -> np.ndarray:
    """(n, dim) unit vectors near a random `latent`-dim subspace (signal-to-noise 10:1 per dim)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((latent, dim), dtype=np.float32)
    x = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):  # in chunks: bounded temporaries at 1M
        m = min(100_000, n - start)
        z = rng.standard_normal((m, latent), dtype=np.float32)
        x[start:start + m] = z @ w + 0.1 * np.sqrt(latent) * rng.standard_normal((m, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def hnsw(n: int, dim: int, n_queries: int, data: str = "low-rank",
         not_run: str | None = None) -> None:
    """Build HNSW (core.index.vectors defaults), then recall@10 and latency at several efSearch."""
    note(f"query hnsw: building {n} x {dim} {data} (M=32, efConstruction=100)")
    if data == "uniform":
        vectors = random_unit_vectors(n + n_queries, dim, seed=1)
    else:
        vectors = low_rank_unit_vectors(n + n_queries, dim, seed=1)
    vectors, queries = vectors[:n], vectors[n:]  # queries: unseen points of the same data
    exact_index = VectorIndex.build(vectors, "exact")
    truth = exact_index.search(queries, K).ids  # (Q, K)
    exact_ms = _latencies_ms(lambda q, i=exact_index: i.search(q, K), queries)
    del exact_index
    gc.collect()
    t = time.perf_counter()
    index = VectorIndex.build(vectors, "hnsw")
    build_s = time.perf_counter() - t
    size = len(faiss.serialize_index(index._index))  # noqa: SLF001 (bytes on disk)
    emit("query.hnsw_build", build_s, "s", n=n, dim=dim, data=data, hnsw_m=index.hnsw_m,
         ef_construction=100, bytes_per_vector=size / n, exact_bytes_per_vector=4 * dim,
         not_run=not_run)
    chosen = None
    for ef in (16, 32, 64, 128, 256, 512):
        index.ef_search = ef
        found = index.search(queries, K).ids
        recall = float(np.mean([len(set(a) & set(b)) / K for a, b in zip(found, truth, strict=True)]))
        ms = _latencies_ms(lambda q, i=index: i.search(q, K), queries)
        fields = dict(n=n, dim=dim, data=data, ef_search=ef, recall_at_10=recall,
                      queries=n_queries)
        _emit_latency("query.hnsw", ms, exact_ms, "exact search (core.index.vectors)", **fields)
        if recall >= 0.95 and chosen is None:
            chosen = (ef, recall, percentile(ms, 50))
            if ef >= 128:
                break
    if chosen:
        emit("query.hnsw_recall_at_10", chosen[1], "recall", n=n, dim=dim, data=data,
             ef_search=chosen[0], p50_ms=chosen[2], target=">= 0.95", met=True,
             note="the smallest efSearch tried that reaches recall@10 >= 0.95")
    else:
        emit("query.hnsw_recall_at_10", recall, "recall", n=n, dim=dim, data=data, ef_search=ef,
             target=">= 0.95", met=False)


def run(quick: bool) -> None:
    sizes = (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000)
    for n in sizes:
        for dim in (128, 512):
            exact(n, dim, 100 if quick else (200 if n < 1_000_000 else 100))
            gc.collect()
    if quick:
        hnsw(100_000, 128, 200)
    else:
        hnsw(1_000_000, 128, 200, not_run="1M x 512 HNSW not built: distances cost ~4x at "
             "512 dims, so its build would take ~4x the 128-dim one")
        hnsw(100_000, 128, 200, data="uniform")
