"""Geometric verification of candidate pairs (core.duplicates.features + verify): throughput.

Data: synthetic demo radiographs (256 px PNGs, the file list repeated so every image is still
read and decoded from disk). Candidates: each image with 5 others (k = 5, no pair
deduplicated: the worst case). Measured: features per image (decode, normalise, ORB; one
process per core), then pairs verified per second (one process per core), and the minutes
for 100k images at k = 5 extrapolated from them. Reference: the plain single-process loop a
first probe would write: decode both images, SIFT both, ratio-test matches, RANSAC, per pair.
"""

from __future__ import annotations

import os
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
    from core.duplicates.features import image_features
    from core.duplicates.verify import verify_many

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
        t = time.perf_counter()
        table = image_features(root, rel, workers=workers)
        feat_s = time.perf_counter() - t
        note(f"verify: {len(pairs)} pairs")
        t = time.perf_counter()
        verify_many(table, pairs, workers=workers)
        ver_s = time.perf_counter() - t
        note(f"verify: reference SIFT loop on {n_ref} pairs")
        ref = sift_loop(files, pairs[rng.choice(len(pairs), n_ref, replace=False)])
    images_per_s = n / feat_s
    pairs_per_s = len(pairs) / ver_s
    minutes = (100_000 / images_per_s + 100_000 * K / pairs_per_s) / 60
    load = machine().load_1min
    emit("verify.features_images_per_s", images_per_s, "images/s", n=n, workers=workers, load_1min=load)
    emit("verify.pairs_per_s", pairs_per_s, "pairs/s", reference="plain single-process SIFT loop",
         reference_value=ref, n_pairs=len(pairs), workers=workers, load_1min=load)
    emit("verify.minutes_per_100k_images_k5", minutes, "min",
         reference="plain single-process SIFT loop", reference_value=100_000 * K / ref / 60,
         better=LOWER, extrapolated_from=n, load_1min=load)


def files_differ(files: list[Path], pairs: np.ndarray) -> np.ndarray:
    """(P,) bool: the two rows point at different files (the demo list repeats)."""
    names = np.array([str(f) for f in files])
    return names[pairs[:, 0]] != names[pairs[:, 1]]
