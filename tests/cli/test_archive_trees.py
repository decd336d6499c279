"""The test archives (a nested DICOM hospital tree, a flat PNG/JPEG folder) through every command:
train, evaluate, search, duplicates and embed, via `core.cli.main.main`. One tiny run per tree.

On the DICOM tree: patients come from PatientID (splits patient-disjoint), the lateral and the CT
slice are skipped with their reason unless `--views all`, and the re-exported instance (one
SOPInstanceUID, other pixels) is an exact duplicate pair.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from core.cli.main import main
from tests.archives import DicomTree, dicom_tree, flat_films
from tests.cli.cli_helpers import TINY, run_cli


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Both archives, each trained once (the training's output kept for the tests)."""
    root = tmp_path_factory.mktemp("archives")
    tree = dicom_tree(root / "hospital")
    flat = flat_films(root / "flat")
    out = {}
    for name, data in (("dicom", tree.root), ("flat", flat)):
        run = root / f"run-{name}"
        rc = main(["train", "--data", str(data), "--run", str(run), *TINY, "--json"])
        assert rc == 0
        out[name] = (data, run)
    out["tree"] = tree
    return out


def _items(run: Path) -> list[dict]:
    from core.run_folder import RunPaths

    with RunPaths(run).items.open(newline="") as f:
        return list(csv.DictReader(f))


def test_dicom_tree_trains_with_patients_from_the_headers(trees: dict) -> None:
    data, run = trees["dicom"]
    tree: DicomTree = trees["tree"]
    report = json.loads((run / "report.json").read_text())
    skipped = {s["path"]: s["reason"] for s in report["skipped"]}
    assert skipped[tree.lateral] == "lateral view (ViewPosition LL)"
    assert skipped[tree.ct] == "not a radiograph (Modality CT)"
    assert tree.corrupt in skipped  # the reader names why
    assert report["class_counts"] == {}  # patient folders are not classes
    items = {r["path"]: r for r in _items(run)}
    assert items["HOSP00000/study1/series1/img0.dcm"]["patient_id"] == "HOSP00000"
    assert items[tree.no_patient]["patient_id"] == ""
    assert tree.monochrome1 in items and tree.lateral not in items
    by_patient: dict[str, set[str]] = {}
    for r in items.values():
        if r["patient_id"]:
            by_patient.setdefault(r["patient_id"], set()).add(r["split"])
    assert len(by_patient) == 5 and all(len(v) == 1 for v in by_patient.values())
    assert (run / "dicom-headers.csv").is_file()  # the cache is the run's, not the archive's
    assert not list(data.rglob("*.csv"))
    assert json.loads((run / "config.json").read_text())["views"] == "frontal"


@pytest.mark.parametrize("name", ["dicom", "flat"])
def test_evaluate_search_duplicates_embed(trees: dict, name: str, capsys, tmp_path: Path) -> None:
    data, run = trees[name]
    result = json.loads(run_cli(capsys, "evaluate", "--run", str(run), "--no-baselines", "--json"))
    assert result["precision_at_5"] is None and "label metrics skipped" in result["label_metrics_skipped"]
    query = data / _items(run)[0]["path"]
    hits = json.loads(run_cli(capsys, "search", "--run", str(run), "--image", str(query), "--json"))
    assert hits["results"]
    dup = json.loads(run_cli(capsys, "duplicates", "--run", str(run), "--threshold", "0.99", "--json"))
    if name == "dicom":
        tree: DicomTree = trees["tree"]
        pairs = {(p["a"], p["b"]): p for p in dup["pairs"]}
        pair = pairs[(tree.original, tree.reexport)]
        assert pair["kind"] == "exact"  # one SOPInstanceUID: the same image, pixels unread
    run_cli(capsys, "embed", "--run", str(run))
    assert len(_items(run)) == json.loads((run / "report.json").read_text())["n_images"]
    out = tmp_path / "out"
    got = json.loads(run_cli(capsys, "embed", "--run", str(run), "--data", str(data), "--out", str(out),
                             "--views", "all"))
    n = len(_items(run))
    assert got["n_images"] == (n + 2 if name == "dicom" else n)  # the lateral and the CT kept


def test_labels_and_views_options_on_the_dicom_tree(trees: dict, capsys, tmp_path: Path) -> None:
    data, run = trees["dicom"]
    result = json.loads(run_cli(capsys, "evaluate", "--run", str(run), "--data", str(data),
                                "--labels", "folders", "--views", "all", "--no-baselines", "--json"))
    assert result["n_gallery"] == len(_items(run)) + 2  # every film, the lateral and CT included
    # the top-level folders were taken as labels: the two films of NOID (no PatientID, so not
    # excluded as one patient) are the queries with a relevant film
    assert result["precision_at_5"] is not None and result["n_queries"] == 2
    rc = main(["evaluate", "--run", str(run), "--data", str(data), "--labels", "manifest"])
    assert rc == 2 and "has no manifest.csv" in capsys.readouterr().err
    dup = json.loads(run_cli(capsys, "duplicates", "--run", str(run), "--data", str(data),
                             "--threshold", "0.99", "--views", "all", "--json"))
    assert any(p["kind"] == "exact" for p in dup["pairs"])
