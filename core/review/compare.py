"""Why a pair was flagged, as pictures: the second image aligned onto the first, their
difference, and the matched keypoints that agree on one transform (pure numpy/OpenCV arrays).

The alignment is the geometric check's own (`core.geometry.verify`): ORB matches and a
RANSAC similarity, recomputed here at display size so the pictures show what was decided.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.data.imageio import to_uint8
from core.geometry.features import SIDE, features_of, normalise
from core.geometry.verify import agreement, fit_transform, match_points, thumb_matrix

DISPLAY = 512  # longer side of the pictures


@dataclass(frozen=True)
class PairEvidence:
    """Pictures and numbers for one pair.

    overlay: (H, W, 3) uint8, first image in red, the aligned second in green and blue (grey
    where they agree); difference: (H, W) uint8, |first - aligned second| after matching grey
    levels, stretched; matches: (H', W1 + W2, 3) uint8, both images side by side with the
    inlier matches drawn. overlay/difference are None when no transform was found.
    """

    inliers: int
    agreement: float
    overlay: np.ndarray | None
    difference: np.ndarray | None
    matches: np.ndarray


def pair_evidence(a: np.ndarray, b: np.ndarray, display: int = DISPLAY) -> PairEvidence:
    """Align b onto a and draw the evidence.

    Args:
        a, b: (H, W) float in [0, 1] or uint8 grey images.
        display: longer side of the pictures.

    Returns:
        PairEvidence.
    """
    ga = a if a.dtype == np.uint8 else to_uint8(a)
    gb = b if b.dtype == np.uint8 else to_uint8(b)
    fa, fb = features_of(ga), features_of(gb)
    pa, pb = match_points(fa, fb)
    m, inl = fit_transform(pa, pb)  # the fit verify_pair uses: the picture shows its verdict
    da, db = normalise(ga, display), normalise(gb, display)
    matches = draw_matches(da, db, pa[inl] * max(da.shape) / SIDE, pb[inl] * max(db.shape) / SIDE)
    if m is None:
        return PairEvidence(0, 0.0, None, None, matches)
    agree, _ = agreement(fa.thumb, fb.thumb, thumb_matrix(m, fa.thumb, fb.thumb))
    md = thumb_matrix(m, da, db)  # the same transform between the display-size images
    h, w = da.shape
    warped = cv2.warpAffine(db, md, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    cover = cv2.warpAffine(np.ones_like(db), md, (w, h), flags=cv2.INTER_NEAREST, borderValue=0) > 0
    return PairEvidence(int(inl.sum()), agree, overlay(da, warped),
                        difference(da, warped, cover), matches)


def overlay(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: a in red, b (same shape) in green and blue."""
    return np.stack([a, b, b], axis=-1).astype(np.uint8)


def difference(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """|a - b| after mapping b's grey levels onto a's (on the mask), stretched to 0..255.

    Args:
        a, b: (H, W) uint8 of one shape; mask: (H, W) bool where b is defined (None: all).

    Returns:
        (H, W) uint8; black where they agree and outside the mask.
    """
    mask = np.ones(a.shape, bool) if mask is None else mask
    out = np.zeros(a.shape, np.float32)
    if mask.any():
        va = a[mask].astype(np.float32)
        vb = b[mask].astype(np.float32)
        matched = np.empty_like(vb)
        matched[np.argsort(vb, kind="stable")] = np.sort(va)  # histogram matching: gamma does not count
        out[mask] = np.abs(va - matched)
    top = float(out.max())
    return np.rint(out / top * 255).astype(np.uint8) if top > 0 else out.astype(np.uint8)


def draw_matches(a: np.ndarray, b: np.ndarray, pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """a and b side by side (top-aligned) with a line per match.

    Args:
        a, b: uint8 grey images; pa, pb: (M, 2) matched points in a's and b's pixels.

    Returns:
        (max(Ha, Hb), Wa + Wb, 3) uint8.
    """
    h = max(a.shape[0], b.shape[0])
    canvas = np.zeros((h, a.shape[1] + b.shape[1], 3), np.uint8)
    canvas[:a.shape[0], :a.shape[1]] = a[..., None]
    canvas[:b.shape[0], a.shape[1]:] = b[..., None]
    for (xa, ya), (xb, yb) in zip(pa, pb, strict=True):
        p, q = (round(float(xa)), round(float(ya))), (round(float(xb)) + a.shape[1], round(float(yb)))
        cv2.line(canvas, p, q, (60, 220, 60), 1, cv2.LINE_AA)
        cv2.circle(canvas, p, 3, (255, 200, 0), 1, cv2.LINE_AA)
        cv2.circle(canvas, q, 3, (255, 200, 0), 1, cv2.LINE_AA)
    return canvas
