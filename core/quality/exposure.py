"""Exposure problems: films too dark or too bright, judged from their grey histogram.

A chest film shows dark lungs and bright bone around mid grey; a film whose mean grey lies
below DARK_MEAN or above BRIGHT_MEAN (as the model sees it: DICOM windowed) is listed, the
furthest from the limit first. On a third of the development set (259 films) the means lie
between 0.26 and 0.78, so the limits list none of its films.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.quality.findings import Finding, FindingList
from core.quality.histogram import histogram_mean, share_above, share_below

DARK_MEAN = 0.2
BRIGHT_MEAN = 0.8
TAIL = 0.1  # the darkest and brightest tenth of the grey scale, named in the reason
TITLE = "Exposure"
MEANING = f"Too dark (mean grey below {DARK_MEAN}) or too bright (above {BRIGHT_MEAN})"


def exposure_problem(hist: np.ndarray) -> tuple[str, float] | None:
    """('too dark' | 'too bright', mean grey) for a film outside the limits, else None."""
    mean = histogram_mean(hist)
    if mean < DARK_MEAN:
        return "too dark", mean
    if mean > BRIGHT_MEAN:
        return "too bright", mean
    return None


def find_exposure(paths: Sequence[str], labels: Sequence[str], hists: Sequence[np.ndarray | None],
                  limit: int | None = None) -> FindingList:
    """Films too dark or too bright, furthest past its limit first (a None histogram: film
    not read, left out). The score is the mean grey."""
    found = []
    for path, label, hist in zip(paths, labels, hists, strict=True):
        problem = exposure_problem(hist) if hist is not None else None
        if problem is None:
            continue
        what, mean = problem
        past = DARK_MEAN - mean if what == "too dark" else mean - BRIGHT_MEAN
        tail = (f"{share_below(hist, TAIL):.0%} of pixels in the darkest tenth" if what == "too dark"
                else f"{share_above(hist, 1 - TAIL):.0%} in the brightest tenth")
        found.append((past, path, Finding(path, label, round(mean, 4),
                                          f"{what}: mean grey {mean:.2f}; {tail}", "mean grey")))
    found.sort(key=lambda t: (-t[0], t[1]))
    return FindingList("exposure", TITLE, MEANING, tuple(f for _, _, f in found[:limit]))
