"""The Duplicates page states the verified-copy estimate with its interval, not only a point."""

from __future__ import annotations

import json
from dataclasses import asdict

from core.duplicates.search import CALIBRATION
from tests.app.test_page_duplicates import _dup_copy, _page, dup_ws  # noqa: F401 (fixtures)


def test_summary_shows_the_calibrated_interval_of_verified_copies(dup_ws):  # noqa: F811
    ws, result, _ = dup_ws
    path = result.out_dir / CALIBRATION
    before = path.read_text() if path.is_file() else None
    at = _page()
    assert not any("verified copies" in c.value for c in at.caption)  # a fixed rule: no estimate
    path.write_text(json.dumps({"verification": {
        "rule": asdict(result.verify_rule), "prevalence": 0.01, "target": 0.99,
        "precision": {"value": 0.97, "low": 0.93, "high": 1.0},
        "recall": {"value": 0.91, "low": 0.86, "high": 0.95},
        "recall_by_edit": {"rotate": {"value": 0.8, "low": 0.7, "high": 0.9}}}}))
    try:
        at = _page()
        summary = " ".join(c.value for c in at.caption)
        assert "verified copies: precision 0.970 [0.930–1.000], recall 0.910 [0.860–0.950]" in summary
    finally:
        path.unlink() if before is None else path.write_text(before)
