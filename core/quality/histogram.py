"""A film's grey histogram and the figures read from it (mean, percentiles, tail shares)."""

from __future__ import annotations

import numpy as np

BINS = 256  # one per 8-bit grey level


def grey_histogram(gray: np.ndarray) -> np.ndarray:
    """Counts of each 8-bit grey level. (H, W) uint8 -> (256,) int64."""
    return np.bincount(np.asarray(gray, dtype=np.uint8).ravel(), minlength=BINS).astype(np.int64)


def _levels() -> np.ndarray:
    return np.arange(BINS) / (BINS - 1)  # bin i holds grey i / 255


def histogram_mean(hist: np.ndarray) -> float:
    """Mean grey in [0, 1] of a 256-bin histogram (0.0 for an empty one)."""
    h = np.asarray(hist, dtype=np.float64)
    total = h.sum()
    return float((h * _levels()).sum() / total) if total else 0.0


def histogram_percentile(hist: np.ndarray, q: float) -> float:
    """The grey level in [0, 1] below which `q` percent of the pixels lie: the lowest bin whose
    cumulative count reaches q% of all (0.0 for an empty histogram)."""
    h = np.asarray(hist, dtype=np.float64)
    total = h.sum()
    if not total:
        return 0.0
    cumulative = np.cumsum(h)
    return float(np.searchsorted(cumulative, total * q / 100.0) / (BINS - 1))


def share_below(hist: np.ndarray, level: float) -> float:
    """Share of pixels with grey below `level` (in [0, 1])."""
    h = np.asarray(hist, dtype=np.float64)
    total = h.sum()
    cut = int(np.ceil(level * (BINS - 1)))
    return float(h[:cut].sum() / total) if total else 0.0


def share_above(hist: np.ndarray, level: float) -> float:
    """Share of pixels with grey above `level` (in [0, 1])."""
    h = np.asarray(hist, dtype=np.float64)
    total = h.sum()
    cut = int(np.floor(level * (BINS - 1))) + 1
    return float(h[cut:].sum() / total) if total else 0.0
