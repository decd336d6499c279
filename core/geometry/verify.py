"""Geometric verification of a candidate pair: is it the same film, transformed?

ORB descriptors of the two images are matched (Lowe's ratio test), a transform is fitted with
RANSAC, and the second image is warped onto the first. The transform is an affine map with
bounded shear and anisotropy (`fit_transform`): collections re-export a film cropped to another
aspect ratio and resized to a fixed square, which stretches x and y by different factors, and
a similarity (rotation, one scale, shift) cannot align such a pair (README "Near-duplicates":
the affine fit was chosen by measurement against the similarity on the same pairs). Two
numbers decide:
- inliers: matches consistent with one transform; two different films of the same anatomy
  rarely share more than ~30, a cropped, rotated, re-windowed copy keeps 20 to hundreds;
- agreement: on the aligned overlap (thumbnails, lightly blurred, the second histogram-
  matched to the first so gamma and window/level changes do not count), the fraction of
  pixels within AGREE_LEVELS grey levels. Pixels at either end of the grey scale are left
  out (a film's black border, a rotation's black or white fill, levels a narrower window
  clipped): they say nothing about the content. Copies agree almost everywhere (burned-in text
  and noise touch few pixels after the blur); two films of one patient, taken minutes apart,
  move ribs and diaphragm and agree on far less.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from core.geometry.features import SIDE, FeatureTable, ImageFeatures
from core.geometry.workers import spawn_map

RATIO = 0.8  # Lowe's ratio test (Lowe, IJCV 2004)
REPROJ_PX = 4.0  # RANSAC inlier distance at SIDE pixels
MIN_MATCHES = 8  # fewer good matches: no transform is fitted
AGREE_LEVELS = 8  # grey levels (of 255) within which two aligned pixels agree
MIN_OVERLAP_PX = 200
SCALE_RANGE = (0.3, 3.5)  # a scale outside this is no copy of a film
ANISOTROPY = 2.0  # x/y scale ratio at most this (a 20 %-per-side crop stretched back: 1.67)
MAX_SHEAR = 0.2  # |shear| at most this (a rotation then an anisotropic stretch: under 0.15)
DARK, BRIGHT = 2, 253  # grey levels outside (DARK, BRIGHT) are border, fill or clipped
VERIFIER = "affine-1"  # names this check in caches of its results: bump it when the check changes
MIN_INLIERS_COMPARED = 10  # fewer inliers: no rule can pass (calibration's lowest), skip the overlap


@dataclass(frozen=True)
class Verification:
    """The geometric evidence for one pair.

    inliers: RANSAC inliers (0 when no transform was found); agreement: fraction of the
    aligned overlap that agrees (0..1); overlap: fraction of the first image the second
    covers; matrix: 2x3 similarity taking the second image's SIDE-scale points onto the first's
    (None when none was found).
    """

    inliers: int
    agreement: float
    overlap: float
    matrix: np.ndarray | None = None


NOT_VERIFIED = Verification(0, 0.0, 0.0, None)


def match_points(a: ImageFeatures, b: ImageFeatures) -> tuple[np.ndarray, np.ndarray]:
    """Ratio-test matches: (M, 2) points in a and the (M, 2) points in b they match.

    Each descriptor of a is matched to its nearest descriptor of b in Hamming distance and kept
    when that is below RATIO times the second nearest (what cv2.BFMatcher's knnMatch with k=2
    and the ratio test give, up to ties, in about half the time: no DMatch objects).
    """
    if len(a.desc) < 2 or len(b.desc) < 2:
        return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
    ia, ib = ratio_matches(hamming_table(a.desc, b.desc), RATIO)
    return a.points[ia].reshape(-1, 2), b.points[ib].reshape(-1, 2)


def ratio_matches(d: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Lowe's ratio test on a distance table.

    Args:
        d: (Na, Nb) distances (or squared distances with a squared ratio), Nb >= 2; ratio: a
            row's nearest is kept when below ratio times its second nearest.

    Returns:
        ((M,) rows of a, (M,) their nearest columns of b).
    """
    rows = np.arange(len(d))
    best = d.argmin(axis=1)  # (Na,) the first of equal nearest, as a stable sort would pick
    lo = d[rows, best]
    rest = d.copy()
    rest[rows, best] = np.iinfo(d.dtype).max if d.dtype.kind in "iu" else np.inf
    hi = rest.min(axis=1)  # the second nearest
    ia = np.flatnonzero(lo < ratio * hi)
    return ia, best[ia]


def hamming_table(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(Na, Nb) uint16 Hamming distances between rows of two (N, 32) uint8 descriptor arrays."""
    a64 = np.ascontiguousarray(a).view(np.uint64)  # (Na, 4)
    b64 = np.ascontiguousarray(b).view(np.uint64)
    d = np.zeros((len(a64), len(b64)), np.uint16)
    for w in range(a64.shape[1]):
        d += np.bitwise_count(a64[:, w, None] ^ b64[None, :, w])
    return d


def fit_transform(pa: np.ndarray, pb: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """The transform of a copy taking pb onto pa: (2x3 matrix or None, (M,) bool inlier mask).

    A RANSAC affine fit (independent x and y scale) kept when its shear, anisotropy and scales
    are within bounds (`affine_ok`); otherwise, or when none is found, the similarity fit.
    """
    if len(pa) < MIN_MATCHES:
        return None, np.zeros(len(pa), bool)
    m, inl = cv2.estimateAffine2D(pb, pa, method=cv2.RANSAC, ransacReprojThreshold=REPROJ_PX,
                                  maxIters=1000, confidence=0.99, refineIters=5)
    if m is not None and affine_ok(m):
        return m, inl.ravel().astype(bool)
    return fit_similarity(pa, pb)


def affine_ok(m: np.ndarray) -> bool:
    """True when a 2x3 affine map is a plausible re-export: A = R(theta) [[sx, k sy], [0, sy]]
    with sx, sy in SCALE_RANGE, sx/sy within ANISOTROPY either way and |k| <= MAX_SHEAR."""
    a = m[:, :2].astype(np.float64)
    sx = float(np.hypot(a[0, 0], a[1, 0]))
    if sx == 0:
        return False
    r = a[:, 0] / sx  # the rotation's first column
    upper = r[0] * a[0, 1] + r[1] * a[1, 1]  # R^T A = [[sx, upper], [0, sy]]
    sy = float(r[0] * a[1, 1] - r[1] * a[0, 1])
    if sy <= 0:  # a mirror image is no re-export
        return False
    lo, hi = SCALE_RANGE
    return bool(lo <= sx <= hi and lo <= sy <= hi and 1 / ANISOTROPY <= sx / sy <= ANISOTROPY
                and abs(upper / sy) <= MAX_SHEAR)


def fit_similarity(pa: np.ndarray, pb: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """RANSAC similarity taking pb onto pa: (2x3 matrix or None, (M,) bool inlier mask)."""
    if len(pa) < MIN_MATCHES:
        return None, np.zeros(len(pa), bool)
    m, inl = cv2.estimateAffinePartial2D(pb, pa, method=cv2.RANSAC, ransacReprojThreshold=REPROJ_PX,
                                         maxIters=500, confidence=0.99, refineIters=5)
    if m is None:
        return None, np.zeros(len(pa), bool)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
        return None, np.zeros(len(pa), bool)
    return m, inl.ravel().astype(bool)


def thumb_matrix(m: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The SIDE-scale transform `m` re-expressed between thumbnails a and b."""
    sa = max(a.shape) / SIDE
    sb = max(b.shape) / SIDE
    out = m.astype(np.float64).copy()
    out[:, :2] *= sa / sb
    out[:, 2] *= sa
    return out


def aligned(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """b warped onto a's frame: (warped float32 image, bool mask of where b covers a)."""
    h, w = a.shape
    warped = cv2.warpAffine(b.astype(np.float32), m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    cover = cv2.warpAffine(np.ones(b.shape, np.float32), m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    return warped, cover > 0.99


def agreement(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> tuple[float, float]:
    """Fraction of the aligned overlap where a and b (warped, histogram-matched) agree.

    Args:
        a, b: uint8 thumbnails; m: 2x3 matrix from b's thumbnail to a's.

    Returns:
        (agreement in [0, 1], overlap fraction of a).
    """
    warped, cover = aligned(a, b, m)
    # film border, rotation fill (black or white) and clipped levels say nothing about the content
    mask = cover & (warped > DARK) & (warped < BRIGHT) & (a > DARK) & (a < BRIGHT)
    mask = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    if mask.sum() < MIN_OVERLAP_PX:
        return 0.0, float(mask.mean())
    va = cv2.GaussianBlur(a.astype(np.float32), (0, 0), 0.75)[mask]  # (P,)
    vb = cv2.GaussianBlur(warped, (0, 0), 0.75)[mask]  # (P,)
    matched = np.empty_like(vb)
    matched[np.argsort(vb, kind="stable")] = np.sort(va)  # b's grey levels mapped onto a's
    return float((np.abs(va - matched) < AGREE_LEVELS).mean()), float(mask.mean())


def verify_pair(a: ImageFeatures, b: ImageFeatures, fit=None) -> Verification:
    """Match, fit and compare one pair (b is aligned onto a).

    `fit` is the transform fit (None: `fit_transform`; a measurement may pass `fit_similarity`).
    """
    pa, pb = match_points(a, b)
    m, inl = (fit or fit_transform)(pa, pb)
    if m is None:
        return Verification(0, 0.0, 0.0, None)
    if inl.sum() < MIN_INLIERS_COMPARED:  # only where it can change the answer
        return Verification(int(inl.sum()), 0.0, 0.0, m)
    agree, overlap = agreement(a.thumb, b.thumb, thumb_matrix(m, a.thumb, b.thumb))
    return Verification(int(inl.sum()), agree, overlap, m)


def _verify_payload(payload: tuple[np.ndarray, list[ImageFeatures | None]]) -> list[tuple[int, float, float]]:
    """Verify pairs of local rows into the payload's own feature list (what a worker receives)."""
    pairs, feats = payload
    out = []
    for i, j in pairs:
        a, b = feats[i], feats[j]
        v = NOT_VERIFIED if a is None or b is None else verify_pair(a, b)
        out.append((v.inliers, round(v.agreement, 4), round(v.overlap, 4)))
    return out


def _payloads(table: FeatureTable, pairs: np.ndarray, chunk: int):
    """Chunks of pairs, each with only the features its pairs need (rows renumbered)."""
    for s in range(0, len(pairs), chunk):
        part = pairs[s:s + chunk]
        rows, local = np.unique(part, return_inverse=True)
        yield local.reshape(-1, 2), [table.items[r] for r in rows]


def verify_many(table: FeatureTable, pairs: Sequence[tuple[int, int]] | np.ndarray,
                workers: int = 0, chunk: int = 256) -> list[tuple[int, float, float]]:
    """Verify pairs of rows of `table` in parallel processes (`core.geometry.workers`).

    Each task carries the features of its own pairs only (pairs come sorted by row, so
    neighbours share images).

    Args:
        table: the images' features.
        pairs: (P, 2) row ids.
        workers: processes (0: one per core; 1: in this process).
        chunk: pairs per task.

    Returns:
        (inliers, agreement, overlap) per pair, in order.
    """
    arr = np.asarray(pairs, np.int64).reshape(-1, 2)
    n = workers or (os.cpu_count() or 1)
    if n <= 1 or len(arr) < 2 * chunk:
        return _verify_payload((arr, table.items))
    return [x for part in spawn_map(_verify_payload, _payloads(table, arr, chunk), n) for x in part]
