"""A flat folder of films without labels goes through train, evaluate, search and duplicates.

Before the one listing, `train` answered "no images found in DIR" for a folder of 13 films, and
a one-class folder was refused; SimCLR needs no labels, only the label metrics do.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def flat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from core.demo.dataset import write_demo_dataset

    root = tmp_path_factory.mktemp("unlabelled")
    demo = write_demo_dataset(root / "demo", per_class=3, size=48, seed=0, duplicate_fraction=0.0).root
    out = root / "flat"
    out.mkdir()
    for i, f in enumerate(sorted(demo.rglob("*.png"))):
        shutil.copy(f, out / f"film{i:02d}.png")
    return out


def test_train_then_evaluate_search_duplicates_on_a_flat_folder(flat: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = cli("train", "--data", str(flat), "--run", str(run), "--preset", "tiny", "--workers", "0",
               "--epochs", "1", "--image-size", "32")
    assert proc.returncode == 0, proc.stderr
    assert "no label metrics" in proc.stdout
    report = json.loads((run / "report.json").read_text())
    assert report["n_images"] == len(list(flat.iterdir())) and report["class_counts"] == {}

    proc = cli("evaluate", "--run", str(run), "--no-baselines", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["precision_at_5"] is None and result["label_metrics_skipped"] == (
        "label metrics skipped: the run's test split has no labels (same-patient retrieval is still scored)")
    from core.cli.main import format_evaluation

    assert format_evaluation(result).splitlines()[-1] == result["label_metrics_skipped"]  # the text form

    proc = cli("search", "--run", str(run), "--image", str(flat / "film00.png"), "--json")
    assert proc.returncode == 0, proc.stderr
    proc = cli("duplicates", "--run", str(run), "--threshold", "0.99", "--json")
    assert proc.returncode == 0, proc.stderr


def test_a_one_class_folder_trains(flat: Path, tmp_path: Path) -> None:
    one = tmp_path / "one" / "Normal"
    shutil.copytree(flat, one)
    run = tmp_path / "run"
    proc = cli("train", "--data", str(one.parent), "--run", str(run), "--preset", "tiny",
               "--workers", "0", "--epochs", "1", "--image-size", "32")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((run / "report.json").read_text())
    assert report["class_counts"] == {"Normal": len(list(flat.iterdir()))}
