"""Thresholds from known answers: synthetic copies (the `auto` threshold) or reviewers' verdicts.

Every choice follows one rule: the lowest threshold whose precision on the known pairs
reaches the target (default 0.99), because a lower threshold finds more duplicates. When no
threshold reaches it, the most precise one is returned with `reached=False`.

Three detectors are calibrated on the same pairs:
- embedding: cosine >= t;
- hash: pHash distance <= h;
- combined: cosine >= t, or pHash distance <= h with cosine >= m. Each signal covers the
  other's blind spot: the embedding alone catches crops and rotations (which move a pHash
  far), the hash catches re-encodes and gamma changes, and the floor m lets the embedding
  veto pHash collisions between different images (look-alike films, phantoms). m = -1 is
  plain "either signal".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.duplicates.rules import DEFAULT_TARGET, CalibrationError, Rule

MAX_HASH = 16
_FLOOR_QUANTILES = np.linspace(0.0, 0.9, 19)  # candidate floors m: quantiles of the copies' cosine


@dataclass(frozen=True)
class ThresholdChoice:
    """A threshold and how it did on the known pairs."""

    threshold: float
    precision: float
    recall: float
    reached: bool  # precision >= target


@dataclass(frozen=True)
class RuleChoice:
    """A calibrated rule and its precision and recall on the known pairs."""

    rule: Rule
    precision: float
    recall: float
    reached: bool


def pair_precision_recall(n_true_flagged: int, n_flagged: int, n_true: int) -> tuple[float, float]:
    """The one precision/recall convention for duplicate pairs (calibration and evaluation).

    precision = true flagged / flagged, recall = true flagged / true. An empty denominator
    gives 1.0 for both: flagging nothing makes no false claim, and with no true pairs there
    is nothing to miss (so a rule is never scored down on a set that cannot test it).

    Args:
        n_true_flagged: flagged pairs that are true duplicates.
        n_flagged: pairs the rule flagged.
        n_true: true duplicate pairs.
    """
    precision = n_true_flagged / n_flagged if n_flagged else 1.0
    recall = n_true_flagged / n_true if n_true else 1.0
    return precision, recall


def precision_recall(pos_flags: np.ndarray, neg_flags: np.ndarray) -> tuple[float, float]:
    """Precision and recall of flags on known positives and negatives (`pair_precision_recall`).

    Args:
        pos_flags: (P,) bool, flagged positives; neg_flags: (M,) bool, flagged negatives.
    """
    tp, fp = int(np.count_nonzero(pos_flags)), int(np.count_nonzero(neg_flags))
    return pair_precision_recall(tp, tp + fp, len(pos_flags))


def threshold_for_precision(pos: np.ndarray, neg: np.ndarray,
                            target: float = DEFAULT_TARGET) -> ThresholdChoice:
    """Lowest score threshold whose precision on the known pairs reaches `target`.

    Args:
        pos: (P,) scores of known duplicates (higher = more alike).
        neg: (M,) scores of known non-duplicates.
        target: precision to reach, in (0, 1].

    Returns:
        ThresholdChoice; the threshold is one of the positive scores.

    Raises:
        CalibrationError: no positive scores.
    """
    pos = np.sort(np.asarray(pos, dtype=np.float64))[::-1]  # (P,) best first
    neg = np.sort(np.asarray(neg, dtype=np.float64))  # (M,) ascending
    if pos.size == 0:
        raise CalibrationError("no known duplicate pairs to calibrate on")
    if not 0 < target <= 1:
        raise CalibrationError(f"target precision must be in (0, 1], got {target}")
    tp = np.arange(1, pos.size + 1)  # flagged positives at threshold pos[i] (ties below)
    fp = neg.size - np.searchsorted(neg, pos, side="left")  # (P,) negatives >= pos[i]
    # With tied positive scores only the last of each run counts every positive at that score.
    last = np.r_[pos[1:] != pos[:-1], True]
    precision = np.where(last, tp / (tp + fp), -1.0)
    ok = np.flatnonzero(precision >= target)
    i = int(ok.max()) if ok.size else int(np.argmax(precision))
    return ThresholdChoice(float(pos[i]), float(precision[i]), float(tp[i] / pos.size), bool(ok.size))


def hash_threshold_for_precision(pos: np.ndarray, neg: np.ndarray, target: float = DEFAULT_TARGET,
                                 max_distance: int = MAX_HASH) -> ThresholdChoice:
    """Largest pHash distance h (<= max_distance) whose precision reaches `target`.

    Args:
        pos: (P,) distances of known duplicates; neg: (M,) of known non-duplicates.
        target: precision to reach.
        max_distance: largest h considered.

    Returns:
        ThresholdChoice with an integer threshold (-1 when even h = 0 misses the target and
        flags no positive).
    """
    pos, neg = np.asarray(pos), np.asarray(neg)
    if pos.size == 0:
        raise CalibrationError("no known duplicate pairs to calibrate on")
    options = []
    for h in range(max_distance + 1):
        p, r = precision_recall(pos <= h, neg <= h)
        if r > 0:
            options.append(ThresholdChoice(h, p, r, p >= target))
    reached = [o for o in options if o.reached]
    if reached:
        return max(reached, key=lambda o: o.threshold)
    if options:
        return max(options, key=lambda o: (o.precision, o.recall))
    return ThresholdChoice(-1, 1.0, 0.0, False)


def calibrate_rule(pos_score: np.ndarray, pos_hash: np.ndarray, neg_score: np.ndarray,
                   neg_hash: np.ndarray, target: float = DEFAULT_TARGET,
                   max_distance: int = MAX_HASH) -> RuleChoice:
    """The combined rule with the highest recall at `target` precision on the known pairs.

    Searches the hash threshold h in -1..max_distance and the floor m among -1 and quantiles
    of the copies' cosine; for each, the score threshold is the lowest reaching the target
    over the pairs the hash term leaves. Ties go to the higher precision, then the rule
    without a floor, then the smaller h.

    Args:
        pos_score, pos_hash: (P,) known duplicates; neg_score, neg_hash: (M,) non-duplicates.
        target: precision to reach.
        max_distance: largest hash threshold considered.

    Returns:
        RuleChoice (reached=False when no rule reaches the target: the most precise one).
    """
    ps, ph = np.asarray(pos_score, np.float64), np.asarray(pos_hash, np.float64)
    ns, nh = np.asarray(neg_score, np.float64), np.asarray(neg_hash, np.float64)
    if ps.size == 0:
        raise CalibrationError("no known duplicate pairs to calibrate on")
    floors = [-1.0] + sorted(set(np.quantile(ps, _FLOOR_QUANTILES).tolist()))
    best: RuleChoice | None = None
    for h in range(-1, max_distance + 1):
        for floor in floors if h >= 0 else [-1.0]:
            p_in = (ph <= h) & (ps >= floor)
            n_in = (nh <= h) & (ns >= floor)
            candidates = [Rule(2.0, h, floor)]  # hash term only
            if (~p_in).any():
                t = _threshold_given(ps[~p_in], ns[~n_in], int(p_in.sum()), int(n_in.sum()), target)
                candidates.append(Rule(t, h, floor))
            for rule in candidates:
                p, r = precision_recall(rule.flags(ps, ph), rule.flags(ns, nh))
                option = RuleChoice(rule, p, r, p >= target)
                if best is None or _better(option, best):
                    best = option
    assert best is not None
    return best


def _threshold_given(rest: np.ndarray, rest_neg: np.ndarray, tp0: int, fp0: int,
                     target: float) -> float:
    """Lowest threshold on `rest` reaching target, counting tp0/fp0 already flagged."""
    pos = np.sort(rest)[::-1]
    neg = np.sort(rest_neg)
    tp = tp0 + np.arange(1, pos.size + 1)
    fp = fp0 + neg.size - np.searchsorted(neg, pos, side="left")
    last = np.r_[pos[1:] != pos[:-1], True]
    precision = np.where(last, tp / (tp + fp), -1.0)
    ok = np.flatnonzero(precision >= target)
    return float(pos[ok.max()]) if ok.size else float(pos[int(np.argmax(precision))])


def _better(a: RuleChoice, b: RuleChoice) -> bool:
    if a.reached != b.reached:
        return a.reached
    if not a.reached:
        return (a.precision, a.recall) > (b.precision, b.recall)
    if abs(a.recall - b.recall) > 1e-12:
        return a.recall > b.recall
    return a.precision > b.precision + 1e-12


@dataclass(frozen=True)
class VerdictCalibration:
    """The current threshold judged by reviewers' verdicts, and a suggested one.

    precision: confirmed duplicates among reviewed pairs at or above the threshold.
    recall: confirmed duplicates at or above the threshold among all confirmed ones (of the
    reviewed pairs: pairs never mined cannot count).
    """

    n_duplicate: int
    n_not_duplicate: int
    precision: float | None
    recall: float | None
    suggested: ThresholdChoice | None


def calibrate_from_verdicts(scores: np.ndarray, is_duplicate: np.ndarray, threshold: float,
                            target: float = DEFAULT_TARGET) -> VerdictCalibration:
    """Precision and recall of `threshold` against verdicts, and the threshold they suggest.

    Args:
        scores: (R,) cosine of each reviewed pair (skipped pairs left out).
        is_duplicate: (R,) bool verdicts.
        threshold: the cosine threshold in force.
        target: precision the suggestion must reach.

    Returns:
        VerdictCalibration (None fields when there are no verdicts of the needed kind). The
        suggestion is the lowest verdict score reaching `target`, or the current threshold when
        that already reaches it and is lower.
    """
    s = np.asarray(scores, np.float64)
    y = np.asarray(is_duplicate, bool)
    n_dup, n_not = int(y.sum()), int((~y).sum())
    above = s >= threshold
    precision = float(y[above].mean()) if above.any() else None
    recall = float(above[y].mean()) if n_dup else None
    suggested = threshold_for_precision(s[y], s[~y], target) if n_dup else None
    if suggested is not None and precision is not None and recall is not None \
            and precision >= target and threshold < suggested.threshold:
        # Verdicts give no reason to raise a threshold that already meets the target.
        suggested = ThresholdChoice(float(threshold), precision, recall, True)
    return VerdictCalibration(n_dup, n_not, precision, recall, suggested)


