"""What the Duplicates page shows: the filtered queue of pairs, their comparison images, and
the verdicts turned into a threshold check. Plain data in, plain data out (no streamlit)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.duplicates.candidates import CandidatePair
from core.duplicates.rule import DEFAULT_TARGET, VerdictCalibration, calibrate_from_verdicts
from core.review.store import Verdict, pair_key

STATUSES = ("pending", "duplicate", "not_duplicate", "skip", "any")


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


def review_queue(pairs: Iterable[CandidatePair], current: Mapping[tuple[str, str], Verdict],
                 f: QueueFilter = QueueFilter()) -> list[QueueItem]:
    """The pairs that pass the filter, flagged first, then by score (highest first).

    Args:
        pairs: candidate pairs of a duplicate search.
        current: current verdicts by pair key (`ReviewStore.current()`).
        f: the filter.

    Returns:
        QueueItems in review order.
    """
    if f.status not in STATUSES:
        raise ValueError(f"unknown status {f.status!r}; choose from {', '.join(STATUSES)}")
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
    return sorted(out, key=lambda q: (not q.pair.flagged, -q.pair.score, q.pair.a, q.pair.b))


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
    scores, dup = [], []
    for p in pairs:
        v = current.get(pair_key(p.a, p.b))
        if v is not None and v.verdict in ("duplicate", "not_duplicate"):
            scores.append(p.score)
            dup.append(v.verdict == "duplicate")
    return calibrate_from_verdicts(np.array(scores, np.float64), np.array(dup, bool), threshold, target)


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
