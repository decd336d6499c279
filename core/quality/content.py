"""Near-empty or non-radiograph films: almost uniform grey, or colour content.

A film whose grey values barely spread (1st to 99th percentile under MIN_GREY_SPREAD, the
limit `core.data.plausibility` uses for queries) holds next to nothing: a blank export, a
black frame. A radiograph is grey; a film whose colour channels differ (`colourfulness` above
COLOUR_LIMIT) is a photo, a screenshot or an annotated copy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.data.plausibility import COLOUR_LIMIT, MIN_GREY_SPREAD
from core.quality.findings import Finding, FindingList
from core.quality.histogram import histogram_percentile

TITLE = "Near-empty or not a radiograph"
MEANING = (f"Almost uniform (1st-99th percentile grey spread under {MIN_GREY_SPREAD}) or in "
           f"colour (channel spread over {COLOUR_LIMIT})")


def grey_spread(hist: np.ndarray) -> float:
    """99th minus 1st percentile grey of a 256-bin histogram, in [0, 1]."""
    return histogram_percentile(hist, 99) - histogram_percentile(hist, 1)


def content_problem(hist: np.ndarray, colour: float) -> tuple[str, float] | None:
    """('almost uniform', spread) or ('in colour', colourfulness), else None; uniform first."""
    spread = grey_spread(hist)
    if spread < MIN_GREY_SPREAD:
        return "almost uniform", spread
    if colour > COLOUR_LIMIT:
        return "in colour", colour
    return None


def find_content(paths: Sequence[str], labels: Sequence[str], hists: Sequence[np.ndarray | None],
                 colours: Sequence[float | None], limit: int | None = None) -> FindingList:
    """Films almost uniform (least spread first), then films in colour (most colourful first).
    The score is the grey spread or the colourfulness."""
    uniform, coloured = [], []
    for path, label, hist, colour in zip(paths, labels, hists, colours, strict=True):
        if hist is None:
            continue
        problem = content_problem(hist, colour or 0.0)
        if problem is None:
            continue
        what, value = problem
        if what == "almost uniform":
            uniform.append((value, path, Finding(path, label, round(value, 4),
                                                 f"almost uniform: grey spread {value:.2f} (1st-99th percentile)",
                                                 "grey spread")))
        else:
            coloured.append((-value, path, Finding(path, label, round(value, 4),
                                                   f"in colour: channel spread {value:.2f}; radiographs are grey",
                                                   "channel spread")))
    found = sorted(uniform, key=lambda t: t[:2]) + sorted(coloured, key=lambda t: t[:2])
    return FindingList("content", TITLE, MEANING, tuple(f for _, _, f in found[:limit]))
