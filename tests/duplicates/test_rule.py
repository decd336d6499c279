"""One wording of a rule, one precision/recall convention, calibration.json read back."""

from __future__ import annotations

import numpy as np
import pytest

from core.duplicates.calibration.auto import AutoCalibration
from core.duplicates.calibration.known_pairs import SyntheticSet
from core.duplicates.calibration.thresholds import (
    RuleChoice,
    ThresholdChoice,
    pair_precision_recall,
    precision_recall,
)
from core.duplicates.evaluation.report import pair_scores
from core.duplicates.rules import Rule


@pytest.mark.parametrize(("rule", "ascii_text", "screen_text"), [
    (Rule(0.9, 4, 0.8), "cosine >= 0.9000 or (pHash <= 4 and cosine >= 0.8000)",
     "cosine ≥ 0.9000 or (pHash ≤ 4 and cosine ≥ 0.8000)"),
    (Rule(0.95, 3), "cosine >= 0.9500 or pHash <= 3", "cosine ≥ 0.9500 or pHash ≤ 3"),
    (Rule(0.925, -1), "cosine >= 0.9250", "cosine ≥ 0.9250"),
    (Rule(2.0, 6), "pHash <= 6", "pHash ≤ 6"),  # threshold > 1: the cosine term is off
])
def test_rule_describe(rule, ascii_text, screen_text):
    assert rule.describe() == ascii_text
    assert rule.describe(symbols=True) == screen_text


@pytest.mark.parametrize(("tp", "flagged", "true", "expected"), [
    (3, 4, 6, (0.75, 0.5)),
    (0, 0, 5, (1.0, 0.0)),  # nothing flagged: no false claim, every true pair missed
    (0, 2, 0, (0.0, 1.0)),  # no true pairs: nothing to miss
    (0, 0, 0, (1.0, 1.0)),
])
def test_one_precision_recall_convention(tp, flagged, true, expected):
    assert pair_precision_recall(tp, flagged, true) == expected


def test_calibration_and_evaluation_agree_on_the_convention():
    # 2 of 3 positives flagged, 1 of 2 negatives: precision 2/3, recall 2/3
    assert precision_recall(np.array([True, False, True]), np.array([True, False])) \
        == pytest.approx((2 / 3, 2 / 3))
    # no positives at all: recall 1.0 in both places (it was 0.0 in calibration)
    assert precision_recall(np.array([], bool), np.array([True])) == (0.0, 1.0)
    s = pair_scores({(0, 1), (1, 2)}, set())
    assert (s.precision, s.recall, s.f1) == (0.0, 1.0, 0.0)
    s = pair_scores({(0, 1), (1, 2)}, {(0, 1), (2, 3), (3, 4)})  # tp 1: p 1/2, r 1/3, f1 2/5
    assert (s.precision, s.recall) == (0.5, pytest.approx(1 / 3)) and s.f1 == pytest.approx(0.4)


def test_auto_calibration_round_trips_through_its_json():
    known = SyntheticSet(np.array([0.99, 0.9]), np.array([1, 9]), ["jpeg", "crop"],
                         np.array([0.5]), np.array([20]), ["a.png"])
    cal = AutoCalibration(0.99, RuleChoice(Rule(0.95, 4, 0.8), 1.0, 1.0, True),
                          ThresholdChoice(0.9, 1.0, 1.0, True), ThresholdChoice(4, 1.0, 0.5, True),
                          {"jpeg": 1.0, "crop": 1.0}, known)
    back = AutoCalibration.from_dict(cal.to_dict())
    assert back.to_dict() == cal.to_dict()
    assert back.rules() == {"embedding": Rule(0.9, -1), "hash": Rule(2.0, 4),
                            "combined": Rule(0.95, 4, 0.8)}
    assert list(back.choices()) == ["combined", "embedding", "hash"]
    with pytest.raises(KeyError):
        AutoCalibration.from_dict({"target_precision": 0.99})
