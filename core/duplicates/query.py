"""Is a search query a copy of a film in the dataset? Only evidence that holds says yes.

A cosine alone is no proof: unrelated films of one collection score 0.93-0.99. A query is
called a copy of a result when their pixels are identical, when their pHashes are nearly
identical (at most NEAR_HASH_BITS of 64 differ: on the 776-film dev set no two different films
came that close, while 31 of its 34 listed copies did), or when the run's duplicate rule was
calibrated on known copies (`duplicates --threshold auto`) and the pair passes that rule.
A default or hand-set threshold never raises the warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.duplicates.hashing import hamming, hash_files, hash_pixels
from core.duplicates.rules import NEAR_HASH_BITS, CopyRule
from core.duplicates.search import load_result
from core.retrieval.search import Hit
from core.run_folder import RunError

CHECKED_HITS = 10  # the best results are hashed (about 20-40 ms each for a 1,024 px film)


@dataclass(frozen=True)
class CopyMatch:
    """A result the query is a copy of, and why."""

    hit: Hit
    reason: str


def copy_rule(run_dir: str | Path) -> CopyRule:
    """The run's calibrated duplicate rule (None unless its last duplicate search was `auto`;
    a damaged search, which the Duplicates page names, gives no calibrated rule here)."""
    try:
        result = load_result(run_dir)
    except RunError:
        return CopyRule(None)
    return CopyRule(result.rule if result is not None and result.method == "auto" else None)


def find_copy(query_pixels: np.ndarray, hits: Sequence[Hit], data_root: str | Path,
              rule: CopyRule) -> CopyMatch | None:
    """The best-ranked result the query is a copy of, or None.

    Args:
        query_pixels: (H, W) grey query in [0, 1], as searched.
        hits: its results, best first.
        data_root: the dataset the results' paths are relative to.
        rule: the run's CopyRule.
    """
    top = list(hits[:CHECKED_HITS])
    if not top:
        return None
    q = hash_pixels(query_pixels)
    table = hash_files(data_root, [h.path for h in top])
    for i, hit in enumerate(top):
        if i in table.bad:
            continue
        if table.digests[i] == q.digest:
            return CopyMatch(hit, "identical pixels")
        distance = hamming(q.phash, int(table.phash[i]))
        if distance <= NEAR_HASH_BITS:
            return CopyMatch(hit, f"pHash distance {distance}/64")
        r = rule.calibrated
        if r is not None and bool(r.flags(np.array([hit.score]), np.array([distance]))[0]):
            return CopyMatch(hit, f"cosine {hit.score:.4f} and pHash {distance}/64 pass the calibrated rule")
    return None
