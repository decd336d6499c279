"""Patient-aware search helpers: hide a query's own patient, and a calibrated "same patient?" hint.

The hint is calibrated on the run's own data: every held-out image (val and test, which the
model never trained on) that has a patient id ranks the whole gallery, and each of its top-k
neighbours with a known patient id becomes a (cosine, same patient?) pair. The confidence of a
score s is an isotonic (monotone) fit of "same patient" on the score over those pairs: the share
of pairs near s that were one patient's films.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from sklearn.isotonic import IsotonicRegression

from core.embed.embeddings import Embeddings

HELD_OUT = ("val", "test")


@dataclass(frozen=True)
class SamePatientPrior:
    """Confidence that a neighbour at cosine `score` is a film of the query's patient.

    scores: (M,) ascending knots; probability: (M,) the isotonic fit at each knot
    (non-decreasing), interpolated linearly between knots. `threshold` is the lowest score whose
    confidence reaches `target` (None when no score does, or too few pairs were seen).
    """

    scores: np.ndarray
    probability: np.ndarray
    n_pairs: int
    n_same: int
    target: float
    threshold: float | None

    def confidence(self, score: float) -> float:
        """Estimated P(same patient | cosine = score), in [0, 1]; 0 when uncalibrated."""
        if self.scores.size == 0:
            return 0.0
        return float(np.interp(score, self.scores, self.probability))

    def hint(self, score: float) -> str | None:
        """'likely the same patient' where the model is confident, else None."""
        if self.threshold is None or score < self.threshold:
            return None
        return f"likely the same patient ({self.confidence(score):.0%} of such pairs were)"


def calibrate_same_patient(embeddings: Embeddings, k: int = 10, target: float = 0.9,
                           min_pairs: int = 20, max_queries: int = 5000,
                           seed: int = 0) -> SamePatientPrior:
    """Fit the "same patient?" confidence on a run's held-out images (see the module docstring).

    Args:
        embeddings: the run's embeddings, with patient ids ("" = unknown) and splits.
        k: neighbours per query that become calibration pairs.
        target: the confidence a hint needs.
        min_pairs: fewer same-patient pairs than this give no threshold (no hint at all).
        max_queries: at most this many held-out queries (sampled) for very large runs.
    """
    pids = np.asarray([p or "" for p in embeddings.patients], dtype=str)
    held = np.array([i for i, s in enumerate(embeddings.splits) if s in HELD_OUT], dtype=np.int64)
    if held.size == 0:  # no split recorded: every image is a query
        held = np.arange(len(embeddings))
    held = held[pids[held] != ""]
    if held.size > max_queries:
        held = np.sort(np.random.default_rng(seed).choice(held, max_queries, replace=False))
    known = np.flatnonzero(pids != "")
    pair_scores, pair_same = [], []
    vectors = embeddings.vectors
    kk = min(k, known.size - 1)
    for start in range(0, held.size, 256):
        qb = held[start:start + 256]
        sims = vectors[qb] @ vectors[known].T  # (B, K)
        sims[known[None, :] == qb[:, None]] = -np.inf  # never itself
        if kk <= 0:
            break
        top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]  # (B, kk)
        pair_scores.append(np.take_along_axis(sims, top, axis=1).ravel())
        pair_same.append((pids[known][top] == pids[qb][:, None]).ravel())
    if not pair_scores:
        return SamePatientPrior(np.zeros(0), np.zeros(0), 0, 0, target, None)
    s = np.concatenate(pair_scores).astype(np.float64)
    same = np.concatenate(pair_same)
    n_same = int(same.sum())
    if n_same == 0:
        return SamePatientPrior(np.zeros(0), np.zeros(0), int(s.size), 0, target, None)
    fit = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    fit.fit(s, same.astype(np.float64))
    knots, prob = np.asarray(fit.X_thresholds_), np.asarray(fit.y_thresholds_)
    threshold = None
    if n_same >= min_pairs:
        ok = np.flatnonzero(prob >= target)
        threshold = float(knots[ok[0]]) if ok.size else None
    return SamePatientPrior(knots, prob, int(s.size), n_same, target, threshold)


def same_patient_note(prior: SamePatientPrior, score: float, hit_patient: str = "",
                      query_patient: str = "") -> str | None:
    """What a result says about being the query's patient, in a few words (None: nothing).

    The ids decide when both are known and equal ("same patient"); otherwise the model's
    calibrated hint speaks where it is confident ("same patient? 93%"), and says so when the
    ids disagree with it (two ids for one patient is a leak no id reveals).
    """
    if query_patient and hit_patient == query_patient:
        return "same patient"
    if prior.hint(score) is None:
        return None
    note = f"same patient? {prior.confidence(score):.0%}"
    return f"{note}, ids differ" if query_patient and hit_patient else note


def without_patient(hits: Sequence, patient_id: str | None) -> list:
    """The hits that are not films of `patient_id`, re-ranked 1.. (an unknown id hides nothing)."""
    if not patient_id:
        return list(hits)
    kept = [h for h in hits if getattr(h, "patient_id", "") != patient_id]
    return [replace(h, rank=r + 1) for r, h in enumerate(kept)]
