"""Scaling up (issue 15): IVF-PQ at 1M vectors, Ray vs in-process embedding, ingest latency at 1M.

- ivfpq: build time, memory, recall@10 against exact and single-query p50 for the IVF-PQ kind
  (core.index.vectors, default settings) at 1M x 128 and 1M x 512 (100k x 128 in --quick), on
  the same "low-rank" vectors as benchmarks/query.py (its exact and HNSW figures are the
  references; the exact p50 is re-measured here). Recall is given for the raw index and after
  exact re-scoring of 4 x k candidates (core.index.refine), which is what duplicate checks use.
- ray: `embed_archive` with engine='ray' (a local Ray started here) vs engine='local' on the
  same folder and model; the ratio and Ray's fixed start-up cost.
- ingest: one new image at 1M indexed vectors: decode + embed + search + exact re-score + add
  (core.ingest.check_one), p50 and p99.
"""

from __future__ import annotations

import gc
import os
import time

import faiss
import numpy as np

from benchmarks.common import HIGHER, LOWER, emit, note, percentile
from benchmarks.query import low_rank_unit_vectors
from core.index.ivfpq import settings_of
from core.index.recall import recall_at_k
from core.index.refine import refine_search
from core.index.vectors import VectorIndex

K = 10


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _p50_ms(fn, queries: np.ndarray) -> float:
    fn(queries[0])
    times = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - t) * 1e3)
    return percentile(times, 50)


def ivfpq(n: int, dim: int, n_queries: int = 200) -> None:
    note(f"scaling ivfpq: {n} x {dim} low-rank")
    vectors = low_rank_unit_vectors(n + n_queries, dim, seed=1)
    vectors, queries = vectors[:n], vectors[n:]
    flat = VectorIndex.build(vectors, "exact")
    truth = flat.search(queries, K).ids  # (Q, K)
    exact_p50 = _p50_ms(lambda q, f=flat: f.search(q, K), queries[:100])
    del flat
    gc.collect()
    before = _rss_mib()
    t = time.perf_counter()
    index = VectorIndex.build(vectors, "ivfpq")
    build_s = time.perf_counter() - t
    size = len(faiss.serialize_index(index._index))  # noqa: SLF001 (bytes on disk)
    settings = settings_of(index._index, index.nprobe)  # noqa: SLF001
    emit("scaling.ivfpq_build", build_s, "s", better=LOWER, n=n, dim=dim, data="low-rank",
         factory=settings.factory(dim), nprobe=index.nprobe, bytes_per_vector=round(size / n, 1),
         mib_per_million=round(size / n * 1e6 / 2**20, 1), rss_growth_mib=round(_rss_mib() - before),
         exact_bytes_per_vector=4 * dim, load_1min=round(os.getloadavg()[0], 1))
    def fetch(ids: np.ndarray) -> np.ndarray:
        return vectors[ids]  # stored rows, as a shard read gives them

    for nprobe in sorted({16, index.nprobe, 128}):
        index.nprobe = nprobe
        raw = recall_at_k(index.search(queries, K).ids, truth)
        refined = recall_at_k(refine_search(index, queries, K, fetch).ids, truth)
        p50 = _p50_ms(lambda q: index.search(q, K), queries)
        p50_refined = _p50_ms(lambda q, i=index: refine_search(i, q, K, fetch), queries)
        emit("scaling.ivfpq_p50", p50, "ms", reference="exact search (core.index.vectors)",
             reference_value=exact_p50, better=LOWER, n=n, dim=dim, nprobe=nprobe,
             recall_at_10=round(raw, 4), recall_at_10_refined=round(refined, 4),
             p50_refined_ms=round(p50_refined, 3), queries=n_queries,
             load_1min=round(os.getloadavg()[0], 1))


def _tiny_run(root, n_images: int, preset: str):
    """A demo folder of n_images and a run with an untrained model of `preset` (no training)."""
    import torch

    from core.config import make_run_config
    from core.demo.dataset import write_demo_dataset
    from core.model.checkpoint import save_checkpoint
    from core.model.network import build_model
    from core.run_folder import RunPaths

    data = write_demo_dataset(root / "images", per_class=max(1, n_images // 4), size=128, seed=0).root
    config = make_run_config(str(data), preset, weights="none")  # offline; speed needs no weights
    torch.manual_seed(0)
    save_checkpoint(RunPaths(root / "run").best, build_model(config.model), config, epoch=0)
    return data, root / "run", config


def ray_vs_local(n_images: int, preset: str = "quick") -> None:
    """embed_archive on one folder with each engine (fp32, same model); Ray's start timed apart."""
    import tempfile
    from pathlib import Path

    from core.embed.ray_engine import start_ray
    from core.embed.shards import embed_archive

    with tempfile.TemporaryDirectory() as tmp:
        data, run, config = _tiny_run(Path(tmp), n_images, preset)
        t = time.perf_counter()
        local = embed_archive(run, data, Path(tmp) / "local", shard_size=256, precision="fp32",
                              device="cpu")
        local_s = time.perf_counter() - t
        t = time.perf_counter()
        ray = start_ray(None)
        start_s = time.perf_counter() - t
        t = time.perf_counter()
        on_ray = embed_archive(run, data, Path(tmp) / "ray", shard_size=256, precision="fp32",
                               device="cpu", engine="ray")
        ray_s = time.perf_counter() - t
        ray.shutdown()
    n = local.n_vectors
    emit("scaling.ray_embed", n / ray_s, "images/s", reference="in-process engine (embed_archive local)",
         reference_value=n / local_s, better=HIGHER, n=n, vectors_equal=on_ray.n_vectors == n,
         px=config.train.image_size, arch=config.model.arch, precision="fp32",
         ray_start_s=round(start_s, 1), ray_s=round(ray_s, 1), local_s=round(local_s, 1),
         cores=os.cpu_count(), load_1min=round(os.getloadavg()[0], 1))


def ingest(n: int, preset: str = "seed", n_new: int = 100) -> None:
    """One new image at n indexed vectors: read + embed + pHash + add + exact-re-scored search.

    The n indexed vectors are synthetic (low-rank, at the model's feature size); the new images
    are demo films embedded by an untrained model of `preset` (speed does not depend on weights).
    """
    import tempfile
    from pathlib import Path

    import torch

    from core.data.imageio import read_gray
    from core.device import resolve_precision
    from core.duplicates.hashing import hash_pixels
    from core.embed.encoder import embed_tensor, fold_batchnorm
    from core.model.checkpoint import load_run_model
    from core.model.transforms import eval_view

    precision = resolve_precision("auto", torch.device("cpu"))  # what Encoder.from_run picks here
    with tempfile.TemporaryDirectory() as tmp:
        data, run, config = _tiny_run(Path(tmp), n_new, preset)
        dim = config.model.feature_dim
        note(f"scaling ingest: IVF-PQ over {n} x {dim}, {preset} model, {precision}")
        vectors = low_rank_unit_vectors(n, dim, seed=3)
        index = VectorIndex.build(vectors, "ivfpq")
        model = fold_batchnorm(load_run_model(run, torch.device("cpu"))[0])
        files = sorted(Path(data).rglob("*.png"))[:n_new]
        added: list[np.ndarray] = []

        def fetch(ids: np.ndarray) -> np.ndarray:
            return np.stack([vectors[i] if i < n else added[i - n] for i in ids.tolist()])

        def one(path: Path) -> tuple[float, float]:
            t0 = time.perf_counter()
            pixels = read_gray(path)
            v = embed_tensor(model, eval_view(pixels, config.train.image_size)[None],
                             torch.device("cpu"), precision)  # (1, D)
            hash_pixels(pixels)
            t1 = time.perf_counter()
            index.add(v)
            added.append(v[0])
            refine_search(index, v, K + 1, fetch)
            return (t1 - t0) * 1e3, (time.perf_counter() - t1) * 1e3

        one(files[0])
        times, steps = [], []
        for f in files:
            t = time.perf_counter()
            steps.append(one(f))
            times.append((time.perf_counter() - t) * 1e3)
    embed_ms, index_ms = (percentile([s[x] for s in steps], 50) for x in (0, 1))
    for q in (50, 99):
        emit(f"scaling.ingest_p{q}", percentile(times, q), "ms", better=LOWER, n_indexed=n, dim=dim,
             index="ivfpq", px=config.train.image_size, arch=config.model.arch, precision=precision,
             new_images=len(times), target="p50 < 100 ms" if q == 50 else None,
             steps="read + decode + embed + pHash + index.add + search 44 candidates + exact re-score",
             p50_read_embed_hash_ms=round(embed_ms, 1) if q == 50 else None,
             p50_add_search_ms=round(index_ms, 1) if q == 50 else None,
             torch_threads=torch.get_num_threads(), load_1min=round(os.getloadavg()[0], 1))


def run(quick: bool) -> None:
    if quick:
        ivfpq(100_000, 128)
        ray_vs_local(64)
        ingest(100_000, preset="quick", n_new=20)
    else:
        ivfpq(1_000_000, 128)
        gc.collect()
        ivfpq(1_000_000, 512)
        gc.collect()
        ray_vs_local(512)
        ingest(1_000_000)
