"""`embed --out` files and the patient-aware `evaluate` contract, through the CLI."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def _items(out: Path) -> list[dict[str, str]]:
    with (out / "items.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_embed_out_writes_vectors_and_items_in_one_order(tiny_workspace, tmp_path):
    run, out = tiny_workspace.run_dir, tmp_path / "out"
    proc = cli("embed", "--run", str(run), "--data", str(tiny_workspace.dataset), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    vectors = np.load(out / "embeddings.npy", allow_pickle=False)
    rows = _items(out)
    assert vectors.dtype == np.float32 and vectors.shape == (len(rows), 512)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert list(rows[0]) == ["path", "label", "split", "patient_id"]
    # the run's own dataset: its split and patient ids, and the run's own vectors row for row
    from core.run_folder import RunPaths

    served = RunPaths(run)  # the served artifact set's files
    with served.items.open(newline="") as f:
        run_rows = {r["path"]: (i, r) for i, r in enumerate(csv.DictReader(f))}
    run_vectors = np.load(served.embeddings, allow_pickle=False)
    for row, v in zip(rows, vectors, strict=True):
        i, expected = run_rows[row["path"]]
        assert (row["label"], row["split"], row["patient_id"]) == (
            expected["label"], expected["split"], expected["patient_id"])
        assert float(v @ run_vectors[i]) > 0.999
    assert json.loads(proc.stdout)["n_images"] == len(rows)


def test_embed_out_on_another_folder_has_no_split(tiny_workspace, tmp_path):
    other = tmp_path / "other"
    assert cli("demo-data", str(other), "--per-class", "2", "--size", "48", "--seed", "7").returncode == 0
    out = tmp_path / "out"
    assert cli("embed", "--run", str(tiny_workspace.run_dir), "--data", str(other), "--out", str(out)).returncode == 0
    rows = _items(out)
    n_files = len((other / "manifest.csv").read_text().strip().splitlines()) - 1
    assert len(rows) == np.load(out / "embeddings.npy").shape[0] == n_files
    assert {r["split"] for r in rows} == {""} and all(r["patient_id"] for r in rows)


def test_embed_data_without_out_is_one_line(tiny_workspace, tmp_path):
    proc = cli("embed", "--run", str(tiny_workspace.run_dir), "--data", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--out" in proc.stderr


def test_evaluate_excludes_the_patient_by_default(tiny_workspace):
    run = str(tiny_workspace.run_dir)
    honest = json.loads(cli("evaluate", "--run", run, "--json").stdout)
    old = json.loads(cli("evaluate", "--run", run, "--json", "--include-same-patient").stdout)
    for result in (honest, old):
        for key in ("precision_at_1", "precision_at_5", "precision_at_10", "map", "map_at_r",
                    "per_class", "n_queries", "n_gallery", "protocol", "baselines",
                    "same_patient", "excludes_same_patient"):
            assert key in result
        assert set(result["same_patient"]) - {"verified"} == {"precision_at_1", "map", "recall_at_5",
                                                                "n_queries"}
        for scores in result["baselines"].values():
            assert set(scores["same_patient"]) == set(result["same_patient"])
    assert honest["excludes_same_patient"] is True and old["excludes_same_patient"] is False
    assert "patient" in honest["protocol"] and honest["protocol"] != old["protocol"]
    saved = json.loads((tiny_workspace.run_dir / "evaluation.json").read_text())
    assert saved["excludes_same_patient"] is True  # the old protocol never overwrites the record


def test_train_line_reports_same_patient_p1_from_the_report():
    from types import SimpleNamespace

    from core.cli.main import train_summary

    report = SimpleNamespace(epochs_done=12, train_seconds=215.2, n_skipped=0, evaluation={
        "precision_at_5": 0.8154, "map": 0.5879, "map_at_r": 0.4024, "same_patient_p1": 0.3243})
    assert train_summary(report, "runs/dev") == (
        "trained 12 epochs in 215.2 s; test P@5 0.815, mAP 0.588, mAP@R 0.402, "
        "same-patient P@1 0.324; 0 files skipped; run: runs/dev")
    report.evaluation["same_patient_verified_p1"] = 0.5946
    assert "same-patient P@1 0.324 (0.595 re-ranked by shared landmarks);" in train_summary(report, "r")
    report.evaluation["same_patient_p1"] = None  # no patient with two films
    assert "same-patient" not in train_summary(report, "r")
