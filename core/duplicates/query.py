"""Is a search query a copy of a film in the dataset? Only evidence that holds says yes.

A cosine alone is no proof: unrelated films of one collection score 0.93-0.99. A query is
called a copy of a result when their pixels are identical, when their pHashes are nearly
identical (at most NEAR_HASH_BITS of 64 differ: on the 776-film dev set no two different films
came that close, while 31 of its 34 listed copies did), when the duplicate search's own
geometric check verifies the pair (`core.geometry.verify`, with the rule of the run's last
search, else the default: a cropped, stretched or rotated copy whose pHash moved), or when
the run's duplicate rule was calibrated on known copies (`duplicates --threshold auto`) and
the pair passes that rule. A default or hand-set threshold never raises the warning.
The candidates are the results shown (the warning names one): the best CHECKED_HITS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.duplicates.hashing import HashTable, ImageHashes, hamming, hash_files, hash_pixels
from core.duplicates.rules import NEAR_HASH_BITS, CopyRule
from core.duplicates.search import load_result
from core.geometry.features import features_of, image_features
from core.geometry.verify import verify_pair
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
    a damaged search, which the Duplicates page names, gives no calibrated rule here) and the
    verification rule of its last search (the default without one)."""
    try:
        result = load_result(run_dir)
    except RunError:
        return CopyRule(None)
    if result is None:
        return CopyRule(None)
    return CopyRule(result.rule if result.method == "auto" else None, result.verify_rule)


def find_copy(query_pixels: np.ndarray, hits: Sequence[Hit], data_root: str | Path,
              rule: CopyRule) -> CopyMatch | None:
    """The best-ranked result the query is a copy of, or None: the cheap evidence (pixels,
    pHash, calibrated rule) over every checked result first, then the geometric check.

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
        match = _cheap_match(q, hit, i, table, rule)
        if match is not None:
            return match
    # the geometric check, only when no cheap evidence settled it (ORB: ~10 ms a film)
    mine = features_of(query_pixels)
    feats = image_features(data_root, [h.path for h in top], workers=1)
    for i, hit in enumerate(top):
        if feats[i] is None:
            continue
        v = verify_pair(feats[i], mine)
        if bool(rule.verify.passes(v.inliers, v.agreement)):
            return CopyMatch(hit, f"verified copy: {v.inliers} matching keypoints, "
                                  f"{v.agreement:.0%} of the aligned film agrees")
    return None


def _cheap_match(q: ImageHashes, hit: Hit, i: int, table: HashTable, rule: CopyRule) -> CopyMatch | None:
    """Identical pixels, a near pHash or the calibrated rule, for the i-th result."""
    if i in table.bad:
        return None
    if table.digests[i] == q.digest:
        return CopyMatch(hit, "identical pixels")
    distance = hamming(q.phash, int(table.phash[i]))
    if distance <= NEAR_HASH_BITS:
        return CopyMatch(hit, f"pHash distance {distance}/64")
    r = rule.calibrated
    if r is not None and bool(r.flags(np.array([hit.score]), np.array([distance]))[0]):
        return CopyMatch(hit, f"cosine {hit.score:.4f} and pHash {distance}/64 pass the calibrated rule")
    return None
