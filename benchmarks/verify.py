"""Geometric verification of candidate pairs (core.geometry.features + verify): throughput.

The wall-clock figures depend on what else the machine runs; beside them, the CPU seconds the
worker processes used (counted when they are joined) give the rate on `workers` otherwise idle
cores, the one to extrapolate from on a shared machine (the work splits into independent tasks).

Data: synthetic demo radiographs (256 px PNGs, the file list repeated so every image is still
read and decoded from disk). Candidates: each image with 5 others (k = 5, no pair
deduplicated: the worst case). Measured: features per image (decode, normalise, ORB; one
process per core), then pairs verified per second (one process per core), and the minutes
for 100k images at k = 5 extrapolated from them. Reference: the plain single-process loop a
first probe would write: decode both images, SIFT both, ratio-test matches, RANSAC, per pair.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import LOWER, demo_files, emit, machine, note

K = 5


def sift_loop(files: list[Path], pairs: np.ndarray) -> float:
    """The reference: pairs/s of decode + SIFT + match + RANSAC per pair, one process."""
    sift = cv2.SIFT_create()
    bf = cv2.BFMatcher(cv2.NORM_L2)
    t = time.perf_counter()
    for i, j in pairs:
        ka, da = sift.detectAndCompute(cv2.imread(str(files[i]), cv2.IMREAD_GRAYSCALE), None)
        kb, db = sift.detectAndCompute(cv2.imread(str(files[j]), cv2.IMREAD_GRAYSCALE), None)
        if da is None or db is None or len(da) < 2 or len(db) < 2:
            continue
        good = [m[0] for m in bf.knnMatch(da, db, k=2) if len(m) == 2 and m[0].distance < 0.8 * m[1].distance]
        if len(good) >= 8:
            src = np.float32([kb[g.trainIdx].pt for g in good])
            dst = np.float32([ka[g.queryIdx].pt for g in good])
            cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=4.0)
    return len(pairs) / (time.perf_counter() - t)


def run(quick: bool) -> None:
    from core.geometry.features import image_features
    from core.geometry.verify import verify_many

    n = 500 if quick else 10_000
    n_ref = 100 if quick else 400
    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        files = demo_files(Path(tmp), n)
        root = Path(tmp)
        rel = [str(f.relative_to(root)) for f in files]
        rng = np.random.default_rng(0)
        # each image with K others; distinct files, so every pair is real work
        others = (np.arange(n)[:, None] + rng.integers(1, n, (n, K))) % n  # (n, K)
        pairs = np.stack([np.repeat(np.arange(n), K), others.ravel()], axis=1)  # (n K, 2)
        pairs = pairs[files_differ(files, pairs)]
        note(f"verify: features of {n} images ({workers} processes)")
        t, c = time.perf_counter(), _children_cpu()
        table = image_features(root, rel, workers=workers)
        feat_s, feat_cpu = time.perf_counter() - t, _children_cpu() - c
        note(f"verify: {len(pairs)} pairs")
        t, c = time.perf_counter(), _children_cpu()
        verify_many(table, pairs, workers=workers)
        ver_s, ver_cpu = time.perf_counter() - t, _children_cpu() - c
        note(f"verify: reference SIFT loop on {n_ref} pairs")
        t = time.process_time()
        ref = sift_loop(files, pairs[rng.choice(len(pairs), n_ref, replace=False)])
        ref_cpu = n_ref / (time.process_time() - t)  # pairs per CPU second, one process
        # The search verifies each unordered pair once: a k-NN graph has fewer pairs than n k.
        unique = unique_pair_fraction(sorted(set(files)))
    images_per_s = n / feat_s
    pairs_per_s = len(pairs) / ver_s
    minutes = (100_000 / images_per_s + 100_000 * K / pairs_per_s) / 60
    # the same on idle cores: CPU seconds spread over `workers` cores
    idle_images_per_s, idle_pairs_per_s = n / feat_cpu * workers, len(pairs) / ver_cpu * workers
    idle_minutes = (100_000 / idle_images_per_s + 100_000 * K / idle_pairs_per_s) / 60
    load = machine().load_1min
    emit("verify.features_images_per_s", images_per_s, "images/s", n=n, workers=workers, load_1min=load,
         on_idle_cores=round(idle_images_per_s, 1))
    emit("verify.pairs_per_s", pairs_per_s, "pairs/s", reference="plain single-process SIFT loop",
         reference_value=ref, n_pairs=len(pairs), workers=workers, load_1min=load,
         on_idle_cores=round(idle_pairs_per_s, 1), reference_per_cpu_second=round(ref_cpu, 1))
    emit("verify.minutes_per_100k_images_k5", minutes, "min",
         reference="plain single-process SIFT loop", reference_value=100_000 * K / ref / 60,
         better=LOWER, extrapolated_from=n, load_1min=load)
    emit("verify.minutes_per_100k_images_k5_idle_cores", idle_minutes, "min",
         reference="plain single-process SIFT loop on one idle core",
         reference_value=100_000 * K / ref_cpu / 60, better=LOWER, extrapolated_from=n,
         workers=workers, basis="CPU seconds of the worker processes / workers", load_1min=load)
    emit("verify.minutes_per_100k_images_k5_unique_pairs_idle_cores",
         (100_000 / idle_images_per_s + 100_000 * K * unique / idle_pairs_per_s) / 60, "min",
         reference="plain single-process SIFT loop on one idle core, the same pairs",
         reference_value=100_000 * K * unique / ref_cpu / 60, better=LOWER, unique_fraction=round(unique, 3),
         basis="n k pairs x the unique fraction of a 5-NN graph (32 px pixel cosine) over the demo films",
         target="< 30 min", load_1min=load)


def unique_pair_fraction(files: list[Path], k: int = K) -> float:
    """Unordered pairs in the k-nearest-neighbour graph of `files` over n k (mutual neighbours
    count once), with 32 x 32 pixel vectors for the cosine."""
    from PIL import Image

    x = np.stack([np.asarray(Image.open(f).convert("L").resize((32, 32)), np.float32).ravel() for f in files])
    x -= x.mean(axis=1, keepdims=True)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-9
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    nn = np.argsort(-sims, axis=1)[:, :k]
    pairs = {(min(i, int(j)), max(i, int(j))) for i in range(len(files)) for j in nn[i]}
    return len(pairs) / (len(files) * k)


def _children_cpu() -> float:
    """User + system CPU seconds of joined child processes so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def files_differ(files: list[Path], pairs: np.ndarray) -> np.ndarray:
    """(P,) bool: the two rows point at different files (the demo list repeats)."""
    names = np.array([str(f) for f in files])
    return names[pairs[:, 0]] != names[pairs[:, 1]]
