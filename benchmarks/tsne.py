"""t-SNE of embeddings for the map view: openTSNE vs scikit-learn, at 1k, 5k and 20k points.

Both start from the same 50-dim PCA of 512-dim unit vectors (ten clusters, like classes),
with perplexity 30, PCA initialisation and 750 iterations in all (openTSNE's 250 early
exaggeration + 500; scikit-learn's max_iter=750), on all cores.
Value: openTSNE seconds with the better of 1 thread and all cores (its worker threads
spin: on a busy machine one thread can be several times faster); reference: scikit-learn
seconds (ratio > 1: openTSNE faster).
"""

from __future__ import annotations

import os
import time

import numpy as np

from benchmarks.common import LOWER, emit, note

ITERATIONS = 750


def clustered(n: int, dim: int = 512, clusters: int = 10, seed: int = 0) -> np.ndarray:
    """(n, dim) unit vectors around `clusters` random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    x = centres[rng.integers(clusters, size=n)] + rng.standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def pca50(x: np.ndarray) -> np.ndarray:
    from sklearn.decomposition import PCA

    return PCA(50, random_state=0).fit_transform(x).astype(np.float32)  # (n, 50)


def open_tsne(x: np.ndarray, n_jobs: int) -> np.ndarray:
    from openTSNE import TSNE

    return np.asarray(TSNE(perplexity=30, initialization="pca", n_iter=ITERATIONS - 250,
                           early_exaggeration_iter=250, n_jobs=n_jobs, random_state=0).fit(x))


def sklearn_tsne(x: np.ndarray) -> np.ndarray:
    from sklearn.manifold import TSNE

    return TSNE(perplexity=30, init="pca", max_iter=ITERATIONS, n_jobs=os.cpu_count() or 1,
                random_state=0).fit_transform(x)


def run(quick: bool) -> None:
    open_tsne(pca50(clustered(300)), 1)  # warm-up: imports and first-call set-up, untimed
    for n in (1_000, 5_000) if quick else (1_000, 5_000, 20_000):
        x = pca50(clustered(n))
        note(f"t-SNE {n} points")
        timings = {}
        for jobs in sorted({1, os.cpu_count() or 1}):
            t = time.perf_counter()
            open_tsne(x, jobs)
            timings[jobs] = time.perf_counter() - t
        best = min(timings, key=timings.get)
        ours = timings[best]
        t = time.perf_counter()
        sklearn_tsne(x)
        ref = time.perf_counter() - t
        emit("tsne.seconds", ours, "s", reference="scikit-learn TSNE (Barnes-Hut)", reference_value=ref,
             better=LOWER, n=n, input_dim=50, iterations=ITERATIONS, threads=best,
             seconds_by_threads={str(k): round(v, 2) for k, v in timings.items()},
             faster="openTSNE" if ours <= ref else "scikit-learn",
             target="< 120 s at 20k (the faster one)" if n == 20_000 else None)
