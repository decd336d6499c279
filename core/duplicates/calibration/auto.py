"""The `auto` threshold: copy held-out images, score the copies with the run's model, calibrate.

Held-out images are ones the model did not train on (the run's val and test splits, or any
image of another folder) that have no near copy already in the dataset. Each is copied
once per edit (crop, rescale, gamma, noise, JPEG, rotation, burned-in text); the rules are
chosen on those known duplicates against each query's nearest non-duplicates
(`core.duplicates.calibration.known_pairs`, `core.duplicates.calibration.thresholds`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.duplicates.calibration.known_pairs import SyntheticSet, build_synthetic_set, singletons
from core.duplicates.calibration.thresholds import (
    RuleChoice,
    ThresholdChoice,
    calibrate_rule,
    hash_threshold_for_precision,
    threshold_for_precision,
)
from core.duplicates.hashing import HashTable
from core.duplicates.rules import DEFAULT_TARGET, CalibrationError, Rule
from core.embed.embeddings import Embeddings

MIN_HELDOUT = 5


@dataclass(frozen=True)
class AutoCalibration:
    """The three calibrated detectors and the known pairs they were chosen on."""

    target: float
    rule: RuleChoice  # the combined detector, the one used
    embedding: ThresholdChoice  # cosine alone
    hash: ThresholdChoice  # pHash alone
    recall_by_kind: dict[str, float]  # of the combined rule, per copy edit
    known: SyntheticSet

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary plus the known pairs (for histograms and later estimates)."""
        k = self.known
        return {
            "target_precision": self.target, "combined": asdict(self.rule),
            "embedding": asdict(self.embedding), "hash": asdict(self.hash),
            "recall_by_kind": self.recall_by_kind, "n_originals": len(k.originals),
            "n_positive": int(k.pos_score.size), "n_negative": int(k.neg_score.size),
            "originals": k.originals,
            "pairs": {"pos_score": _floats(k.pos_score), "pos_hash": k.pos_hash.tolist(),
                      "pos_kind": k.pos_kind, "neg_score": _floats(k.neg_score),
                      "neg_hash": k.neg_hash.tolist()},
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> AutoCalibration:
        """Rebuild what `to_dict` wrote (calibration.json).

        Raises:
            KeyError, TypeError, ValueError: not a calibration written by `to_dict`.
        """
        k = d["pairs"]
        combined = d["combined"]
        known = SyntheticSet(np.asarray(k["pos_score"], np.float64), np.asarray(k["pos_hash"], np.int64),
                             list(k.get("pos_kind", [])), np.asarray(k["neg_score"], np.float64),
                             np.asarray(k["neg_hash"], np.int64), list(d.get("originals", [])))
        return AutoCalibration(
            float(d["target_precision"]),
            RuleChoice(Rule(**combined["rule"]), combined["precision"], combined["recall"],
                       combined["reached"]),
            ThresholdChoice(**d["embedding"]), ThresholdChoice(**d["hash"]),
            dict(d.get("recall_by_kind", {})), known)

    def rules(self) -> dict[str, Rule]:
        """The three calibrated detectors as rules: cosine only, pHash only, combined."""
        return {"embedding": Rule(self.embedding.threshold, -1),
                "hash": Rule(2.0, int(self.hash.threshold)), "combined": self.rule.rule}

    def choices(self) -> dict[str, RuleChoice | ThresholdChoice]:
        """Each detector's precision, recall and whether it reached the target, by name."""
        return {"combined": self.rule, "embedding": self.embedding, "hash": self.hash}


def _floats(x: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in x]


def calibrate_known(known: SyntheticSet, target: float = DEFAULT_TARGET) -> AutoCalibration:
    """Calibrate the embedding, hash and combined detectors on known pairs.

    Args:
        known: scored positives and negatives.
        target: precision each detector must reach.

    Returns:
        AutoCalibration.
    """
    rule = calibrate_rule(known.pos_score, known.pos_hash, known.neg_score, known.neg_hash, target)
    flags = rule.rule.flags(known.pos_score, known.pos_hash)
    kinds = np.array(known.pos_kind)
    by_kind = {k: round(float(flags[kinds == k].mean()), 4) for k in dict.fromkeys(known.pos_kind)}
    return AutoCalibration(
        target, rule, threshold_for_precision(known.pos_score, known.neg_score, target),
        hash_threshold_for_precision(known.pos_hash, known.neg_hash, target), by_kind, known)


def auto_calibrate(run: Path, emb: Embeddings, hashes: HashTable, data_root: Path,
                   heldout: Sequence[int] | None, *, target: float = DEFAULT_TARGET,
                   n_heldout: int = 60, n_bystanders: int = 500, seed: int = 0,
                   device: str = "cpu") -> AutoCalibration:
    """Calibrate on synthetic copies of held-out images, embedded with the run's model.

    Args:
        run: the run folder (its checkpoint embeds the copies).
        emb: the dataset's embeddings; hashes: aligned pHashes.
        data_root: dataset root for `emb.paths`.
        heldout: rows the model did not train on (None: any row).
        target: precision to reach.
        n_heldout: originals to copy (a random sample of the eligible ones).
        n_bystanders: other images whose nearest neighbours count as negatives.
        seed: seeds the sample and the edits.
        device: for the model.

    Returns:
        AutoCalibration.

    Raises:
        CalibrationError: fewer than MIN_HELDOUT eligible images.
    """
    from core.embed.encoder import Encoder

    eligible = singletons(hashes, range(len(emb)) if heldout is None else heldout)
    if len(eligible) < MIN_HELDOUT:
        raise CalibrationError(f"only {len(eligible)} held-out images without a near copy; "
                               f"need {MIN_HELDOUT} for 'auto' (give --threshold 0.xx instead)")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(eligible, size=min(n_heldout, len(eligible)), replace=False).tolist())
    others = np.setdiff1d(singletons(hashes, range(len(emb))), chosen)
    bystanders = sorted(rng.choice(others, size=min(n_bystanders, len(others)), replace=False).tolist())
    encoder = Encoder.from_run(run, device)
    known = build_synthetic_set(encoder, data_root, emb.paths, emb.vectors, hashes, chosen, seed=seed,
                                bystanders=bystanders)
    if known.pos_score.size == 0:
        raise CalibrationError("none of the held-out images could be read for calibration")
    return calibrate_known(known, target)
