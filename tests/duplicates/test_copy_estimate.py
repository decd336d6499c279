"""The verified-copy estimate a search reports: read back only for the rule it was made for."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

from core.duplicates.leakage import LeakageReport
from core.duplicates.rules import Rule, VerifyRule
from core.duplicates.search import CALIBRATION, DuplicateResult, copy_estimate


def _result(out: Path, rule: VerifyRule) -> DuplicateResult:
    return DuplicateResult(out, out, out, "auto", Rule(0.95, 4), 0.99, 0.9, 10, [], [],
                           LeakageReport([], [], 0), rule)


def _write(out: Path, rule: VerifyRule, **extra) -> None:
    verification = {"rule": asdict(rule), "prevalence": 0.01, "target": 0.99,
                    "precision": {"value": 0.98, "low": 0.95, "high": 1.0},
                    "recall": {"value": 0.9, "low": 0.85, "high": 0.94},
                    "recall_by_edit": {"crop": {"value": 1.0, "low": 1.0, "high": 1.0}}} | extra
    (out / CALIBRATION).write_text(json.dumps({"verification": verification}))


def test_the_estimate_of_the_rule_in_force(tmp_path):
    rule = VerifyRule(25, 0.8)
    _write(tmp_path, rule)
    est = copy_estimate(_result(tmp_path, rule))
    assert est.prevalence == 0.01
    assert (est.precision.value, est.precision.low, est.precision.high) == (0.98, 0.95, 1.0)
    assert (est.recall.low, est.recall.high) == (0.85, 0.94)
    assert est.recall_by_edit["crop"].value == 1.0


def test_no_estimate_for_another_rule_a_missing_or_a_damaged_file(tmp_path):
    rule = VerifyRule(25, 0.8)
    assert copy_estimate(_result(tmp_path, rule)) is None  # no calibration.json
    _write(tmp_path, rule)
    assert copy_estimate(_result(tmp_path, replace(rule, min_inliers=30))) is None
    _write(tmp_path, rule, precision={"value": 0.98})
    assert copy_estimate(_result(tmp_path, rule)) is None
    (tmp_path / CALIBRATION).write_text("{not json")
    assert copy_estimate(_result(tmp_path, rule)) is None
