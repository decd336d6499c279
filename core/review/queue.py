"""What the Duplicates page shows: the filtered queue of pairs, their comparison images, and
the verdicts turned into a threshold check. Plain data in, plain data out (no streamlit)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.duplicates.calibration.thresholds import (
    ThresholdChoice,
    VerdictCalibration,
    calibrate_from_verdicts,
    threshold_for_precision,
)
from core.duplicates.candidates import CandidatePair
from core.duplicates.rules import DEFAULT_TARGET
from core.review.store import Verdict, pair_key

STATUSES = ("pending", "duplicate", "not_duplicate", "skip", "any")
SORTS = {"score": "cosine, highest first", "score_low": "cosine, lowest first",
         "kind": "evidence: identical pixels, then by pHash distance", "group": "duplicate group"}


@dataclass(frozen=True)
class QueueItem:
    """A candidate pair with its current verdict (None while pending)."""

    pair: CandidatePair
    verdict: Verdict | None

    @property
    def status(self) -> str:
        """'pending' or the current verdict."""
        return "pending" if self.verdict is None else self.verdict.verdict


@dataclass(frozen=True)
class QueueFilter:
    """The reviewer's filters. kinds applies to duplicates only (empty: any kind)."""

    status: str = "pending"
    score_min: float = -1.0
    score_max: float = 1.0
    kinds: tuple[str, ...] = ()
    cross_split_only: bool = False
    flagged_only: bool = True
    found_kinds: tuple[str, ...] = ()  # the search's kind of the pair (exact, copy, ...); empty: any
    sort: str = "score"  # a key of SORTS


def review_queue(pairs: Iterable[CandidatePair], current: Mapping[tuple[str, str], Verdict],
                 f: QueueFilter = QueueFilter(), groups: Sequence[Sequence[str]] = ()) -> list[QueueItem]:
    """The pairs that pass the filter, flagged first, then in the filter's order.

    Args:
        pairs: candidate pairs of a duplicate search.
        current: current verdicts by pair key (`ReviewStore.current()`).
        f: the filter and the order (SORTS; ties by cosine, highest first, then by name).
        groups: the search's duplicate groups, largest first (for sort='group').

    Returns:
        QueueItems in review order.
    """
    if f.status not in STATUSES:
        raise ValueError(f"unknown status {f.status!r}; choose from {', '.join(STATUSES)}")
    if f.sort not in SORTS:
        raise ValueError(f"unknown sort {f.sort!r}; choose from {', '.join(SORTS)}")
    out = []
    for p in pairs:
        item = QueueItem(p, current.get(pair_key(p.a, p.b)))
        if f.status != "any" and item.status != f.status:
            continue
        if not f.score_min <= p.score <= f.score_max + 1e-9:
            continue
        if f.cross_split_only and not p.cross_split:
            continue
        if f.flagged_only and not p.flagged and item.verdict is None:
            continue
        if f.kinds and not (item.verdict is not None and item.verdict.kind in f.kinds):
            continue
        if f.found_kinds and p.kind not in f.found_kinds:
            continue
        out.append(item)
    group_of = {path: g for g, members in enumerate(groups, 1) for path in members}

    def key(q: QueueItem) -> tuple:
        p = q.pair
        first: float
        if f.sort == "score_low":
            first = p.score
        elif f.sort == "kind":
            first = -1 if p.exact else p.hash_distance
        elif f.sort == "group":
            first = group_of.get(p.a, group_of.get(p.b, len(group_of) + 1))
        else:
            first = -p.score
        return (not p.flagged, first, -p.score, p.a, p.b)

    return sorted(out, key=key)


def pending_copies(pairs: Iterable[CandidatePair], current: Mapping[tuple[str, str], Verdict]
                   ) -> list[tuple[str, str]]:
    """Geometrically verified copies nobody has judged yet (for the bulk confirm)."""
    return [(p.a, p.b) for p in pairs if p.kind == "copy" and pair_key(p.a, p.b) not in current]


def pending_exact(pairs: Iterable[CandidatePair], current: Mapping[tuple[str, str], Verdict]
                  ) -> list[tuple[str, str]]:
    """Exact pixel copies nobody has judged yet (for the bulk confirm)."""
    return [(p.a, p.b) for p in pairs if p.exact and pair_key(p.a, p.b) not in current]


def verdict_check(pairs: Sequence[CandidatePair], current: Mapping[tuple[str, str], Verdict],
                  threshold: float, target: float = DEFAULT_TARGET) -> VerdictCalibration:
    """Precision/recall of `threshold` against reviewers' duplicate / not-duplicate verdicts.

    Args:
        pairs: candidate pairs (their cosine scores are used); skipped and pending ones are ignored.
        current: current verdicts.
        threshold: the cosine threshold in force.
        target: precision the suggested threshold must reach.

    Returns:
        VerdictCalibration.
    """
    scores, dup = verdict_scores(pairs, current)
    return calibrate_from_verdicts(scores, dup, threshold, target)


def _match(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """b resized to a's shape (bilinear), float32 in [0, 1]."""
    if a.shape == b.shape:
        return np.asarray(b, np.float32)
    img = Image.fromarray(np.asarray(b, np.float32), mode="F").resize((a.shape[1], a.shape[0]),
                                                                      Image.Resampling.BILINEAR)
    return np.clip(np.asarray(img, np.float32), 0.0, 1.0)


def difference_image(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| after resizing b to a, stretched so the largest difference is white.

    Args:
        a, b: (H, W) and (H', W') float in [0, 1].

    Returns:
        (H, W) float32 in [0, 1]; all black for identical pixels.
    """
    d = np.abs(np.asarray(a, np.float32) - _match(a, b))  # (H, W)
    top = float(d.max())
    return d / top if top > 0 else d


def overlay_image(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a in red, b (resized to a) in green and blue: grey where they agree, coloured where not.

    Returns:
        (H, W, 3) uint8.
    """
    b2 = _match(a, b)
    rgb = np.stack([a, b2, b2], axis=-1)  # (H, W, 3)
    return np.rint(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


MIN_VERDICTS_EACH = 10  # duplicate and not-duplicate verdicts needed before a threshold is suggested
INTERVAL = 0.9  # central share of the bootstrap thresholds shown as the interval
_BOOTSTRAP = 400


@dataclass(frozen=True)
class ThresholdSuggestion:
    """A threshold suggested by the verdicts, with a bootstrap interval, or why there is none.

    choice: the suggested threshold and its precision/recall on the verdicts (None: too few).
    low, high: the central 90% of the thresholds suggested by resampled verdicts.
    missing: '' when suggested, else one line on the verdicts still needed.
    """

    choice: ThresholdChoice | None
    low: float | None
    high: float | None
    missing: str


def suggest_threshold(check: VerdictCalibration, scores: np.ndarray, is_duplicate: np.ndarray,
                      target: float = DEFAULT_TARGET, min_each: int = MIN_VERDICTS_EACH,
                      seed: int = 0) -> ThresholdSuggestion:
    """The verdicts' suggested threshold once there are `min_each` verdicts of each kind.

    Args:
        check: verdict_check's result (its `suggested`).
        scores, is_duplicate: the reviewed pairs' cosines and verdicts (verdict_scores).
        target: precision the suggestion must reach.
        min_each: duplicate and not-duplicate verdicts needed.
        seed: the bootstrap's seed (the interval is reproducible).
    """
    n_dup, n_not = check.n_duplicate, check.n_not_duplicate
    if n_dup < min_each or n_not < min_each or check.suggested is None:
        return ThresholdSuggestion(None, None, None,
                                   f"A threshold is suggested after at least {min_each} verdicts of each "
                                   f"kind: {n_dup} duplicate and {n_not} not-duplicate so far.")
    s, y = np.asarray(scores, np.float64), np.asarray(is_duplicate, bool)
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(_BOOTSTRAP):
        idx = rng.integers(0, s.size, s.size)
        if y[idx].any():
            found.append(threshold_for_precision(s[idx][y[idx]], s[idx][~y[idx]], target).threshold)
    tail = (1 - INTERVAL) / 2 * 100
    low, high = (float(v) for v in np.percentile(found, [tail, 100 - tail]))
    return ThresholdSuggestion(check.suggested, low, high, "")


def verdict_scores(pairs: Sequence[CandidatePair], current: Mapping[tuple[str, str], Verdict]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Cosines and duplicate flags of the pairs with a duplicate / not-duplicate verdict."""
    scores, dup = [], []
    for p in pairs:
        v = current.get(pair_key(p.a, p.b))
        if v is not None and v.verdict in ("duplicate", "not_duplicate"):
            scores.append(p.score)
            dup.append(v.verdict == "duplicate")
    return np.array(scores, np.float64), np.array(dup, bool)


def pending_count(run_dir: str | Path, reviews_db: str | Path) -> int | None:
    """Flagged duplicate pairs of the run's last search that no reviewer has judged yet.

    Returns:
        The count; None when the run has no readable duplicate search (or no review install).
    """
    from core.duplicates.search import load_result
    from core.review.store import ReviewStore

    try:
        result = load_result(run_dir)
        if result is None:
            return None
        flagged = result.flagged
        if not Path(reviews_db).is_file():
            return len(flagged)
        reviewed = ReviewStore(Path(reviews_db), dataset=str(result.data_root)).current()
        return sum(pair_key(p.a, p.b) not in reviewed for p in flagged)
    except (OSError, ValueError, KeyError, TypeError, sqlite3.Error):
        return None
