"""`duplicates-eval`: a typed table (ScoreRow, DuplicateEvaluation), its JSON and its Markdown."""

from __future__ import annotations

import json
import shutil

import pytest

from core.duplicates.evaluation.pair_scores import ScoreRow, pair_scores
from core.duplicates.evaluation.report import DuplicateEvaluation, evaluate_duplicates, format_table


def test_pair_scores_by_hand():
    s = pair_scores({(0, 1), (2, 3), (4, 5)}, {(0, 1), (2, 3), (6, 7), (8, 9)})
    assert (s.precision, s.recall, s.n_flagged, s.n_true) == (2 / 3, 0.5, 3, 4)
    assert s.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def test_json_keeps_the_row_keys_and_writes_intervals_only_where_estimated():
    table = DuplicateEvaluation("r", [
        ScoreRow("cxr real pairs", "combined", 1.0, 0.5, 0.6667, 2, 4),
        ScoreRow("val copies", "verification", 0.99, 0.9, 0.9429, 90, 100, (0.97, 1.0), (0.84, 0.95))],
        {"cxr": {"combined": "cosine >= 0.95"}})
    rows = json.loads(json.dumps(table.to_dict()))["rows"]
    assert set(rows[0]) == {"set", "detector", "precision", "recall", "f1", "n_flagged", "n_true"}
    assert rows[1]["precision_ci"] == [0.97, 1.0] and rows[1]["recall_ci"] == [0.84, 0.95]
    assert table.row("cxr real pairs", "combined").recall == 0.5
    assert table.row("demo", "combined") is None
    md = format_table(table)
    assert "| cxr real pairs | combined | 1.000 | 0.500 | 0.667 | 2 | 4 |" in md
    assert "0.990 [0.970, 1.000]" in md and "- combined: cosine >= 0.95" in md


def test_the_evaluation_runs_on_a_run_and_a_set_with_listed_pairs(_tiny_workspace_built, tmp_path):
    """The real pipeline on the tiny run, the demo set standing in for the real set."""
    ws = _tiny_workspace_built
    cxr = tmp_path / "cxr"
    shutil.copytree(ws.dataset, cxr)
    (cxr / "near_duplicates.csv").write_text((cxr / "duplicates.csv").read_text())
    run = tmp_path / "run"
    shutil.copytree(ws.run_dir, run)
    table = evaluate_duplicates(run, cxr=cxr, demo=ws.dataset)
    sets = {r.set for r in table.rows}
    assert {"cxr real pairs", "cxr synthetic copies", "demo"} <= sets
    for r in table.rows:
        assert 0 <= r.precision <= 1 and 0 <= r.recall <= 1 and r.n_true >= 0
    assert table.row("cxr real pairs", "combined").n_true > 0  # the listed copies were read
    assert any(r.detector.startswith("edit ") for r in table.rows)
    assert set(table.rules) == {"cxr", "demo"}
