"""One query of the index, timed: the results and the seconds it took (embedding + search)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from core.retrieval.search import Hit, Searcher


@dataclass(frozen=True)
class TimedHits:
    """Results of one query with the time it took (embedding plus index search)."""

    hits: list[Hit]
    seconds: float
    shared: tuple[int, ...] | None = None  # landmarks each hit shares with the query, when ranked by them


def timed_search(searcher: Searcher, pixels: np.ndarray, k: int,
                 exclude_path: str | None = None, hide_patient: str | None = None) -> TimedHits:
    """Embed an image and search the index, timing both.

    Args:
        searcher: the run's loaded Searcher.
        pixels: (H, W) float image in [0, 1].
        k: number of results.
        exclude_path: a dataset image picked as the query: left out of its own results
            (ranks renumbered), since finding itself says nothing.
        hide_patient: leave this patient's films out (None or "": hide nothing).
    """
    start = time.perf_counter()
    vector = searcher.embed_pixels(pixels)
    if exclude_path is None:
        hits = searcher.search_vector(vector, k, hide_patient)
    else:
        found = [h for h in searcher.search_vector(vector, k + 1, hide_patient)
                 if h.path != exclude_path][:k]
        hits = [replace(h, rank=r) for r, h in enumerate(found, 1)]
    return TimedHits(hits, time.perf_counter() - start)
