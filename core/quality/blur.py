"""Blur: films much less sharp than the run's others (variance of the Laplacian).

The variance of a film's Laplacian (Pech-Pacheco et al. 2000), measured at one size
(MEASURE_SIDE on the long side, so large and small files compare), is low where edges are
soft. Radiographs are smooth by nature, so a fixed limit would list whole collections; a film
is listed when its variance is below BLUR_FRACTION of the run's median, least sharp first.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from core.quality.findings import Finding, FindingList

BLUR_FRACTION = 0.25
TITLE = "Blur"
MEANING = f"Much less sharp than the run's films: Laplacian variance below {BLUR_FRACTION:.0%} of the run's median"


def laplacian_variance(gray: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian of an 8-bit image (cv2.Laplacian, reflected borders).

    (H, W) uint8 -> float; 0.0 for a uniform image.
    """
    return float(cv2.Laplacian(np.asarray(gray, dtype=np.uint8), cv2.CV_64F).var())


def find_blur(paths: Sequence[str], labels: Sequence[str], variances: Sequence[float | None],
              limit: int | None = None) -> FindingList:
    """Films whose Laplacian variance is under BLUR_FRACTION of the run's median, least sharp
    first (None: film not read, left out; uniform films, variance 0, are left to the content
    list). The score is the variance."""
    known = [v for v in variances if v is not None and v > 0]
    if len(known) < 3:
        return FindingList("blur", TITLE, MEANING, skipped="fewer than 3 films measured: no median to compare with")
    median = float(np.median(known))
    limit_value = BLUR_FRACTION * median
    rows = [(v, p, lab) for p, lab, v in zip(paths, labels, variances, strict=True)
            if v is not None and 0 < v < limit_value]
    rows.sort(key=lambda t: (t[0], t[1]))
    return FindingList("blur", TITLE, MEANING, tuple(
        Finding(p, lab, round(v, 2), f"Laplacian variance {v:.1f} (run median {median:.1f})",
                "Laplacian variance")
        for v, p, lab in rows[:limit]))
