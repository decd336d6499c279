"""Typed results at stage boundaries keep today's JSON keys (the CLI --json contract)."""

from __future__ import annotations

import json

from core.files import atomic_write_json
from core.retrieval.evaluate import Evaluation, load_evaluation
from core.retrieval.metrics import RetrievalScores
from core.run_folder import RunPaths
from core.runs.pipeline import RunReport, load_report
from core.runs.workspace import RunSummary, run_summary

REPORT_KEYS = {"state", "data", "layout", "n_images", "class_counts", "split_counts", "skipped",
               "epochs_done", "best_epoch", "best_val_loss", "train_seconds", "device",
               "precision", "n_skipped", "evaluation", "wall_seconds"}
SCORE_KEYS = {"precision_at_1", "precision_at_5", "precision_at_10", "map", "map_at_r",
              "per_class", "n_queries", "n_gallery"}


def _scores(p5: float) -> RetrievalScores:
    return RetrievalScores(0.5, p5, 0.25, 0.4, 0.3, 4, 10, {"a": {"map": 0.4, "n_queries": 4}})


def test_run_report_keys_and_round_trip(tmp_path):
    report = RunReport("finished", 3, data="/d", layout="folders", n_images=10,
                       class_counts={"a": 6, "b": 4}, split_counts={"train": 6, "val": 2, "test": 2},
                       skipped=({"path": "x.png", "reason": "truncated"},), best_epoch=2,
                       best_val_loss=1.25, train_seconds=4.0, device="cpu", precision="fp32",
                       evaluation={"precision_at_5": 0.6, "map": 0.5, "map_at_r": 0.4},
                       wall_seconds=9.5)
    d = report.to_dict()
    assert set(d) == REPORT_KEYS and d["n_skipped"] == 1
    assert d["skipped"] == [{"path": "x.png", "reason": "truncated"}]
    assert RunReport("stopped", 2).to_dict() == {"state": "stopped", "epochs_done": 2}
    atomic_write_json(RunPaths(tmp_path).report, d)
    assert load_report(tmp_path) == report
    (tmp_path / "report.json").write_text("{broken")
    assert load_report(tmp_path) is None


def test_evaluation_keys_and_round_trip(tmp_path):
    ev = Evaluation(_scores(0.6), "queries = test split", "/d", {"pixels_32": _scores(0.2)})
    d = ev.to_dict()
    assert set(d) == SCORE_KEYS | {"protocol", "data", "baselines", "excludes_same_patient"}
    assert set(d["baselines"]["pixels_32"]) == SCORE_KEYS
    assert "baselines" not in Evaluation(_scores(0.6), "p", "/d").to_dict()  # --no-baselines
    atomic_write_json(RunPaths(tmp_path).evaluation, d)
    back = load_evaluation(tmp_path)
    assert back is not None and back.to_dict() == json.loads(json.dumps(d))


def test_run_summary_row(tmp_path):
    paths = RunPaths(tmp_path)
    atomic_write_json(paths.config, {"data": "/d", "preset": "tiny", "model": {"arch": "resnet18"},
                                     "train": {"epochs": 2, "image_size": 32}})
    atomic_write_json(paths.report, {"epochs_done": 2, "best_val_loss": 1.5, "wall_seconds": 7.0})
    atomic_write_json(paths.evaluation, Evaluation(_scores(0.6), "p", "/d",
                                                   {"pixels_32": _scores(0.2)}).to_dict())
    s = run_summary(tmp_path)
    assert isinstance(s, RunSummary)
    assert (s.preset, s.arch, s.epochs, s.epochs_done, s.precision_at_5) == ("tiny", "resnet18", 2, 2, 0.6)
    assert s.to_dict() == {
        "run": tmp_path.name, "path": str(tmp_path), "state": s.state, "preset": "tiny",
        "arch": "resnet18", "epochs": 2, "image_size": 32, "epochs_done": 2, "best_val_loss": 1.5,
        "wall_seconds": 7.0, "precision_at_5": 0.6, "map": 0.4, "map_at_r": 0.3,
        "same_patient_p@1": None, "same_patient_reranked_p@1": None,
        "pixels_32_p@5": 0.2, "pixels_32_map@r": 0.3}
    same = {"precision_at_1": 0.3, "map": 0.3, "recall_at_5": 0.4, "n_queries": 9,
            "verified": {"precision_at_1": 0.6, "map": 0.4, "recall_at_5": 0.5, "n_queries": 9}}
    atomic_write_json(paths.evaluation, Evaluation(_scores(0.6), "p", "/d", None, same).to_dict())
    assert (run_summary(tmp_path).same_patient_p1, run_summary(tmp_path).same_patient_verified_p1) == (0.3, 0.6)
    empty = run_summary(tmp_path / "nothing")
    assert empty.precision_at_5 is None and empty.baselines == {}


def test_duplicates_json_has_one_reader(tmp_path):
    import pytest

    from core.duplicates.search import load_result
    from core.run_folder import RunError, RunPaths
    from core.runs.views import duplicate_group_of

    doc = {"run": str(tmp_path), "data": "/d", "method": "auto",
           "rule": {"threshold": 0.93, "hash_threshold": 4, "hash_floor": -1.0},
           "estimated_precision": 0.99, "estimated_recall": 0.8, "n_images": 3,
           "pairs": [{"a": "x.png", "b": "y.png", "i": 0, "j": 1, "score": 0.97, "hash_distance": 2,
                      "exact": False, "cross_split": True, "same_patient": False, "flagged": True}],
           "groups": [["x.png", "y.png"]], "leakage": {}}
    result_file = RunPaths(tmp_path, generation=None).duplicates  # the one name of the file
    atomic_write_json(result_file, doc)
    result = load_result(tmp_path)
    assert result.rule.describe() == "cosine >= 0.9300 or pHash <= 4"
    assert [(p.a, p.i) for p in result.pairs] == [("x.png", 0)]
    assert duplicate_group_of(tmp_path) == {"x.png": 1, "y.png": 1}
    atomic_write_json(result_file, {"run": "x"})  # damaged: one line, and views fall back
    with pytest.raises(RunError, match="damaged"):
        load_result(tmp_path)
    assert duplicate_group_of(tmp_path) == {}
