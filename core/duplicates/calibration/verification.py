"""Thresholds of the geometric check, chosen on known copies at a realistic prevalence.

Positives: copies of held-out images made with every edit (`core.duplicates.calibration.edits.EDITS`,
"combo" three times), each verified against its original. Negatives: each original's and
each bystander's k nearest other images by embedding and its k most-voted images by shared
local features (`core.duplicates.copy_candidates`): the candidates a search would verify,
verified the same way. Copies are rare in a real archive, so precision is estimated at a
prevalence pi (the share of verified candidates that are copies), not at the sample's mix:

    precision = pi * recall / (pi * recall + (1 - pi) * false_positive_rate)

A dataset may already hold copies nobody listed (the development set does: re-exports of one
film in two collections), and a search's nearest neighbours find them; counted as non-copies
they would make every rule look imprecise. A negative with overwhelming evidence (at least
CERTAIN_INLIERS inliers and agreement CERTAIN_AGREEMENT, far past every non-copy measured:
README "Near-duplicates") is therefore set aside as an unlisted copy, and counted
(`n_set_aside`), not scored.

The rule is the one with the highest recall whose estimated precision reaches the target;
among rules within half a point of that recall the strictest is kept (a margin for real
data). Intervals are percentile bootstraps over positives and negatives (Efron 1979).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.data.imageio import ImageReadError, load_image
from core.duplicates.calibration.edits import EDITS
from core.duplicates.calibration.known_pairs import make_copies
from core.duplicates.copy_candidates import copy_candidate_pairs
from core.duplicates.rules import VerifyRule
from core.geometry.features import FeatureTable, features_of
from core.geometry.verify import verify_many, verify_pair

DEFAULT_PREVALENCE = 0.01
CERTAIN_INLIERS = 100  # dev set: the non-copies with >= 100 inliers agree on at most 0.72
CERTAIN_AGREEMENT = 0.94  # ... and the non-copies agreeing most (0.88) keep at most 40 inliers
INLIER_GRID = (10, 15, 20, 25, 30, 40)  # starts at verify.MIN_INLIERS_COMPARED
AGREEMENT_GRID = tuple(np.round(np.arange(0.50, 0.991, 0.01), 2))
CALIBRATION_EDITS = (*EDITS, "combo", "combo")  # combinations vary most: three samples


@dataclass(frozen=True)
class Interval:
    """A point estimate with a 95 % bootstrap interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class VerifyCalibration:
    """The chosen rule, its estimates at the prevalence, per-edit recall, and the known pairs."""

    rule: VerifyRule
    prevalence: float
    target: float
    precision: Interval
    recall: Interval
    recall_by_edit: dict[str, Interval]
    pos_inliers: np.ndarray = field(repr=False)
    pos_agreement: np.ndarray = field(repr=False)
    pos_edit: list[str] = field(repr=False)
    neg_inliers: np.ndarray = field(repr=False)
    neg_agreement: np.ndarray = field(repr=False)
    set_aside: list[tuple[str, str]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary and the known pairs."""
        return {"rule": asdict(self.rule), "prevalence": self.prevalence, "target": self.target,
                "precision": asdict(self.precision), "recall": asdict(self.recall),
                "recall_by_edit": {k: asdict(v) for k, v in self.recall_by_edit.items()},
                "n_positive": int(self.pos_inliers.size), "n_negative": int(self.neg_inliers.size),
                "n_set_aside": len(self.set_aside), "set_aside": [list(p) for p in self.set_aside],
                "pairs": {"pos_inliers": self.pos_inliers.tolist(),
                          "pos_agreement": np.round(self.pos_agreement, 4).tolist(),
                          "pos_edit": self.pos_edit, "neg_inliers": self.neg_inliers.tolist(),
                          "neg_agreement": np.round(self.neg_agreement, 4).tolist()}}


def precision_at(recall: float, fpr: float, prevalence: float) -> float:
    """Precision when a share `prevalence` of candidates are copies (1.0 when nothing is flagged)."""
    flagged = prevalence * recall + (1 - prevalence) * fpr
    return 1.0 if flagged == 0 else prevalence * recall / flagged


def choose_rule(pos: tuple[np.ndarray, np.ndarray], neg: tuple[np.ndarray, np.ndarray],
                target: float = 0.99, prevalence: float = DEFAULT_PREVALENCE) -> VerifyRule:
    """The rule with the best recall whose precision at `prevalence` reaches `target`.

    Args:
        pos, neg: (inliers, agreement) arrays of known copies and known non-copies.

    Returns:
        VerifyRule (the strictest grid rule when none reaches the target).
    """
    best: list[tuple[float, VerifyRule]] = []
    for mi in INLIER_GRID:
        for ma in AGREEMENT_GRID:
            r = VerifyRule(mi, float(ma))
            rec = float(r.passes(*pos).mean()) if pos[0].size else 0.0
            fpr = float(r.passes(*neg).mean()) if neg[0].size else 0.0
            if precision_at(rec, fpr, prevalence) >= target:
                best.append((rec, r))
    if not best:
        return VerifyRule(INLIER_GRID[-1], float(AGREEMENT_GRID[-1]))
    top = max(rec for rec, _ in best)
    near = [r for rec, r in best if rec >= top - 0.005]
    return max(near, key=lambda r: (r.min_agreement, r.min_inliers))


def bootstrap(rule: VerifyRule, pos: tuple[np.ndarray, np.ndarray], pos_edit: Sequence[str],
              neg: tuple[np.ndarray, np.ndarray], prevalence: float, n: int = 500,
              seed: int = 0) -> tuple[Interval, Interval, dict[str, Interval]]:
    """Precision (at prevalence), recall and recall per edit, each with a 95 % interval."""
    rng = np.random.default_rng(seed)
    hit_p = rule.passes(*pos).astype(float)
    hit_n = rule.passes(*neg).astype(float)
    edits = np.array(pos_edit)
    precs, recs = [], []
    by_edit: dict[str, list[float]] = {e: [] for e in dict.fromkeys(pos_edit)}
    for _ in range(n):
        ip = rng.integers(0, hit_p.size, hit_p.size)
        rec = float(hit_p[ip].mean())
        fpr = float(hit_n[rng.integers(0, hit_n.size, hit_n.size)].mean()) if hit_n.size else 0.0
        recs.append(rec)
        precs.append(precision_at(rec, fpr, prevalence))
        for e in by_edit:
            sel = hit_p[ip][edits[ip] == e]
            if sel.size:
                by_edit[e].append(float(sel.mean()))
    fpr0 = float(hit_n.mean()) if hit_n.size else 0.0
    rec0 = float(hit_p.mean())

    def iv(point: float, xs: list[float]) -> Interval:
        lo, hi = np.percentile(xs, [2.5, 97.5]) if xs else (point, point)
        return Interval(round(point, 4), round(float(lo), 4), round(float(hi), 4))

    per_edit = {e: iv(float(hit_p[edits == e].mean()), xs) for e, xs in by_edit.items()}
    return iv(precision_at(rec0, fpr0, prevalence), precs), iv(rec0, recs), per_edit


def calibrate_verification(root: str | Path, paths: Sequence[str], vectors: np.ndarray,
                           table: FeatureTable, originals: Sequence[int], bystanders: Sequence[int],
                           *, k: int = 5, target: float = 0.99,
                           prevalence: float = DEFAULT_PREVALENCE, seed: int = 0,
                           workers: int = 0) -> VerifyCalibration | None:
    """Verify known copies and known non-copies, choose the rule, estimate it with intervals.

    Args:
        root: dataset root; paths: its N relative paths; vectors: (N, D) unit embeddings.
        table: the dataset's features (aligned with paths).
        originals: rows to copy (no near copy already in the dataset).
        bystanders: more rows whose nearest neighbours count as non-copies.
        k: neighbours per query verified as negatives.
        target, prevalence: the precision to reach, at this share of copies.
        seed: seeds the edits and the bootstrap.
        workers: verification processes.

    Returns:
        VerifyCalibration, or None when no original could be read.
    """
    rng = np.random.default_rng(seed)
    pos_i, pos_a, pos_e = [], [], []
    used = []
    for i in originals:
        if table[i] is None:
            continue
        try:
            pixels = load_image(Path(root) / paths[i], name=paths[i]).pixels
        except ImageReadError:
            continue
        used.append(i)
        for edit, copy in zip(CALIBRATION_EDITS, make_copies(pixels, rng, CALIBRATION_EDITS), strict=True):
            v = verify_pair(table[i], features_of(copy))
            pos_i.append(v.inliers)
            pos_a.append(v.agreement)
            pos_e.append(edit)
    if not used:
        return None
    queries = np.array(sorted(set(used) | set(bystanders)), np.int64)
    sims = vectors[queries] @ vectors.T  # (Q, N)
    sims[np.arange(len(queries)), queries] = -np.inf
    kk = min(k, vectors.shape[0] - 1)
    nn = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]  # (Q, k)
    voted = copy_candidate_pairs(table, k=k, rows=queries)  # what the search verifies too
    neg_pairs = sorted({(min(q, int(j)), max(q, int(j))) for q, row in zip(queries.tolist(), nn, strict=True)
                        for j in row} | {(int(a), int(b)) for a, b in voted})
    found = verify_many(table, neg_pairs, workers=workers)
    certain = [x[0] >= CERTAIN_INLIERS and x[1] >= CERTAIN_AGREEMENT for x in found]
    neg = [x for x, c in zip(found, certain, strict=True) if not c]
    set_aside = [(paths[a], paths[b]) for (a, b), c in zip(neg_pairs, certain, strict=True) if c]
    pos_arr = (np.array(pos_i, np.int64), np.array(pos_a, np.float64))
    neg_arr = (np.array([x[0] for x in neg], np.int64), np.array([x[1] for x in neg], np.float64))
    rule = choose_rule(pos_arr, neg_arr, target, prevalence)
    precision, recall, by_edit = bootstrap(rule, pos_arr, pos_e, neg_arr, prevalence, seed=seed)
    return VerifyCalibration(rule, prevalence, target, precision, recall, by_edit,
                             pos_arr[0], pos_arr[1], pos_e, neg_arr[0], neg_arr[1], set_aside)
