"""The rules that call a pair the same radiograph, in one place, each with its one `describe()`.

- `Rule`: the embedding/hash rule of a duplicate search (cosine, pHash, or both), fixed by
  hand or calibrated (`core.duplicates.calibration`);
- `VerifyRule`: when a geometrically verified pair (`core.geometry.verify`) is a copy;
- `CopyRule`: what Search counts as the query being a copy of a result.
`parse_threshold` reads a search's threshold as given (CLI and `run_duplicates`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import UserError

DEFAULT_TARGET = 0.99  # the precision a calibrated rule must reach
NEAR_HASH_BITS = 2  # Search: a pHash this close is a copy whatever the rule


class CalibrationError(UserError):
    """Not enough known pairs to choose a threshold (one line)."""

@dataclass(frozen=True)
class Rule:
    """The combined detector: score >= threshold, or hash <= hash_threshold and score >= hash_floor.

    hash_threshold -1 turns the hash term off; threshold > 1 turns the score-only term off;
    hash_floor -1 trusts the hash alone.
    """

    threshold: float
    hash_threshold: int
    hash_floor: float = -1.0

    def flags(self, score: np.ndarray, hash_distance: np.ndarray) -> np.ndarray:
        """Which pairs the rule calls duplicates.

        Args:
            score: (P,) cosine similarities; hash_distance: (P,) pHash distances.

        Returns:
            (P,) bool.
        """
        s = np.asarray(score, dtype=np.float64)
        d = np.asarray(hash_distance, dtype=np.float64)
        return (s >= self.threshold - 1e-9) | ((d <= self.hash_threshold) & (s >= self.hash_floor - 1e-9))

    def describe(self, symbols: bool = False) -> str:
        """The rule in words, the one wording used by the CLI, the pages and the evaluation table.

        Terms that are off are left out: Rule(0.9, 4, 0.8) -> "cosine >= 0.9000 or (pHash <= 4
        and cosine >= 0.8000)", Rule(2.0, 3) -> "pHash <= 3". `symbols` writes ≥ and ≤ (for screens).
        """
        ge, le = ("≥", "≤") if symbols else (">=", "<=")
        parts = []
        if self.threshold <= 1.0:
            parts.append(f"cosine {ge} {self.threshold:.4f}")
        if self.hash_threshold >= 0:
            if self.hash_floor > -1:
                parts.append(f"(pHash {le} {self.hash_threshold} and cosine {ge} {self.hash_floor:.4f})")
            else:
                parts.append(f"pHash {le} {self.hash_threshold}")
        return " or ".join(parts) or "nothing (every term is off)"

@dataclass(frozen=True)
class VerifyRule:
    """A pair is the same film when inliers >= min_inliers and agreement >= min_agreement.

    The default is what calibration chose on the development set with the bounded affine fit
    (`benchmarks/copy_geometry.py`: recall 0.995, no false alarm in 6,551 hard non-copies, whose
    highest agreement was 0.884 at 40 inliers); 20 and 0.85 let that pair of one patient's films
    through.
    """

    min_inliers: int = 30
    min_agreement: float = 0.92

    def describe(self) -> str:
        """The rule in words."""
        return f"same film when >= {self.min_inliers} RANSAC inliers and agreement >= {self.min_agreement:.2f}"

    def passes(self, inliers: np.ndarray, agreement: np.ndarray) -> np.ndarray:
        """(P,) bool: which verified pairs are copies."""
        return (np.asarray(inliers) >= self.min_inliers) & (np.asarray(agreement) >= self.min_agreement - 1e-9)

@dataclass(frozen=True)
class CopyRule:
    """The evidence in force for a run: always pixels, near-hash and the geometric check (the
    duplicate search's verifier and rule), and a calibrated embedding/hash rule if any."""

    calibrated: Rule | None
    verify: VerifyRule = VerifyRule()

    def describe(self) -> str:
        """One line for the page: what makes a result count as the same radiograph."""
        base = (f"identical pixels, a pHash within {NEAR_HASH_BITS}/64 bits, or a verified copy "
                f"(>= {self.verify.min_inliers} matching keypoints under one transform and "
                f"{self.verify.min_agreement:.0%} of the aligned film agreeing)")
        if self.calibrated is None:
            return (f"Copy check: {base}. A cosine alone never counts until a duplicate search "
                    "with the 'auto' threshold has calibrated this run.")
        return f"Copy check: {base}, or the calibrated rule ({self.calibrated.describe(symbols=True)})."

def parse_threshold(threshold: str | float) -> float | None:
    """A search's threshold as given: None for 'auto' (calibrate), else a cosine in [-1, 1].

    The one parser, used by the CLI's `--threshold` and by `run_duplicates`.

    Raises:
        CalibrationError: anything else (one line).
    """
    if isinstance(threshold, str) and threshold.strip().lower() == "auto":
        return None
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise CalibrationError(f"threshold must be 'auto' or a cosine in [-1, 1], got {threshold!r}") from None
    if not -1.0 <= value <= 1.0:
        raise CalibrationError(f"threshold must be a cosine in [-1, 1], got {value}")
    return value
