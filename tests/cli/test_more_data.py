"""`train --data A --data B`: one run learns from every film of every folder, labelled or not.

A is a small labelled demo set, B the nested DICOM tree of tests/archives.py (no labels, patients
from the headers). The run records B's films by absolute path (A's stay relative), so items.csv
keeps `path,label,split,patient_id` first and every command opens both folders' films; splits
stay patient-disjoint; `embed`, `evaluate`, `search`, `duplicates` and `add` work on the run.
Also here: embed-archive and add leave the tree's lateral and CT out (named with the reason)
unless `--views all`.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from core.cli.main import main
from tests.archives import dicom_tree
from tests.cli.cli_helpers import TINY, run_cli


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A labelled folder and the DICOM tree, and one tiny run trained on both."""
    from core.demo.dataset import write_demo_dataset

    root = tmp_path_factory.mktemp("two_folders")
    labelled = write_demo_dataset(root / "labelled", per_class=3, size=48, seed=0,
                                  duplicate_fraction=0.0).root
    tree = dicom_tree(root / "hospital")
    run = root / "run"
    assert main(["train", "--data", str(labelled), "--data", str(tree.root), "--run", str(run),
                 *TINY, "--json"]) == 0
    return {"a": labelled.resolve(), "b": tree.root.resolve(), "tree": tree, "run": run}


def _items(run: Path) -> tuple[list[str], list[dict]]:
    from core.run_folder import RunPaths

    with RunPaths(run).items.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_the_run_learns_from_both_folders(two: dict) -> None:
    a, b, tree, run = two["a"], two["b"], two["tree"], two["run"]
    config = json.loads((run / "config.json").read_text())
    assert config["data"] == str(a) and config["more_data"] == [str(b)]
    columns, rows = _items(run)
    assert columns[:4] == ["path", "label", "split", "patient_id"]
    first = [r for r in rows if not Path(r["path"]).is_absolute()]
    second = [r for r in rows if Path(r["path"]).is_absolute()]
    assert first and all((a / r["path"]).is_file() and r["label"] for r in first)
    assert second and all(Path(r["path"]).is_relative_to(b) and r["label"] == "" for r in second)
    assert str(b / "HOSP00000/study1/series1/img0.dcm") in {r["path"] for r in second}
    assert str(b / tree.lateral) not in {r["path"] for r in rows}  # the views rule, per folder
    by_patient: dict[str, set[str]] = {}
    for r in rows:
        if r["patient_id"]:
            by_patient.setdefault(r["patient_id"], set()).add(r["split"])
    assert by_patient and all(len(v) == 1 for v in by_patient.values())  # patient-disjoint
    report = json.loads((run / "report.json").read_text())
    assert report["n_images"] == len(rows) and set(report["class_counts"]) == {r["label"] for r in first}
    assert report["layout"] == "manifest+unlabelled"  # the demo set has a manifest.csv
    skipped = {s["path"]: s["reason"] for s in report["skipped"]}
    assert skipped[str(b / tree.lateral)] == "lateral view (ViewPosition LL)"


def test_commands_open_the_second_folders_films(two: dict, capsys, tmp_path: Path) -> None:
    b, tree, run = two["b"], two["tree"], two["run"]
    n = len(_items(run)[1])
    run_cli(capsys, "embed", "--run", str(run))  # re-embedding keeps both folders
    assert len(_items(run)[1]) == n
    query = b / "HOSP00002/study0/series1/img1.dcm"
    hits = json.loads(run_cli(capsys, "search", "--run", str(run), "--image", str(query), "--json"))
    assert hits["results"][0]["path"] == str(query)
    result = json.loads(run_cli(capsys, "evaluate", "--run", str(run), "--no-baselines", "--json"))
    assert result["n_gallery"] == n
    dup = json.loads(run_cli(capsys, "duplicates", "--run", str(run), "--threshold", "0.99", "--json"))
    pair = {(p["a"], p["b"]): p for p in dup["pairs"]}[(str(b / tree.original), str(b / tree.reexport))]
    assert pair["kind"] == "exact"
    got = json.loads(run_cli(capsys, "embed", "--run", str(run), "--out", str(tmp_path / "out")))
    assert got["n_images"] == n  # the run's own dataset: both folders
    added = json.loads(run_cli(capsys, "add", "--run", str(run), "--data", str(b), "--json"))
    assert added["added"] == 0  # the second folder is the run's already
    reasons = {s["path"]: s["reason"] for s in added["skipped"]}
    assert reasons[str(b / tree.original)] == "already indexed"
    assert reasons[str(b / tree.lateral)] == "lateral view (ViewPosition LL)"


def test_add_keeps_other_views_only_when_asked(two: dict, capsys, tmp_path: Path) -> None:
    tree, run = two["tree"], tmp_path / "run"
    shutil.copytree(two["run"], run)
    new = tmp_path / "new"
    for rel in (tree.lateral, tree.ct, tree.no_patient):
        (new / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(two["b"] / rel, new / rel)
    added = json.loads(run_cli(capsys, "add", "--run", str(run), "--data", str(new), "--json"))
    assert added["added"] == 1
    assert {s["reason"] for s in added["skipped"]} == {"lateral view (ViewPosition LL)",
                                                     "not a radiograph (Modality CT)"}
    added = json.loads(run_cli(capsys, "add", "--run", str(run), "--data", str(new), "--views", "all",
                               "--json"))
    assert added["added"] == 2


def test_embed_archive_names_what_the_views_rule_left_out(two: dict, capsys, tmp_path: Path) -> None:
    tree, run = two["tree"], two["run"]
    out = tmp_path / "shards"
    got = json.loads(run_cli(capsys, "embed-archive", "--run", str(run), "--data", str(tree.root),
                             "--out", str(out), "--no-index"))
    assert got["n_files"] == tree.n_files - 2 and got["n_left_out"] == 2
    with open(got["left_out_csv"], newline="") as f:
        assert {r["path"]: r["reason"] for r in csv.DictReader(f)} == {
            tree.lateral: "lateral view (ViewPosition LL)", tree.ct: "not a radiograph (Modality CT)"}
    assert (out / "dicom-headers.csv").is_file() and not list(tree.root.rglob("*.csv"))
    got = json.loads(run_cli(capsys, "embed-archive", "--run", str(run), "--data", str(tree.root),
                             "--out", str(tmp_path / "all"), "--no-index", "--views", "all"))
    assert got["n_files"] == tree.n_files and got["n_left_out"] == 0


def test_a_folder_inside_another_or_twice_is_one_line(two: dict, capsys, tmp_path: Path) -> None:
    a, b = two["a"], two["b"]
    for more, words in ((b / "HOSP00000", "is inside --data"), (b, "is given twice")):
        rc = main(["train", "--data", str(a), "--data", str(b), "--data", str(more),
                   "--run", str(tmp_path / "r"), *TINY])
        err = capsys.readouterr().err
        assert rc == 2 and words in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "r").exists()


def test_same_patient_first_reads_the_second_folders_films(two: dict, monkeypatch) -> None:
    """Search's 'Same patient first' re-ranks by landmarks read from each result's file; a film
    of the second folder was refused (outside the dataset folder) and ranked as sharing none."""
    from core.geometry.landmarks import NO_LANDMARKS
    from core.retrieval import priors
    from core.retrieval.search import Searcher

    read: list[Path] = []
    monkeypatch.setattr(priors, "landmarks_of_file", lambda path: read.append(path) or (NO_LANDMARKS, ""))
    film = two["b"] / "HOSP00000/study1/series1/img0.dcm"
    priors._landmarks_of_hit(Searcher(two["run"]), str(film))
    priors._landmarks_of_hit(Searcher(two["run"]), str(two["b"].parent / "elsewhere.png"))
    assert read == [film]  # a file outside the run's folders is still not opened
