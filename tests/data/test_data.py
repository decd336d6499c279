"""Dataset layouts: class folders, Kaggle COVID-19 Radiography Database, manifest.csv."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data.dataset import DatasetError, scan_dataset

CXR = Path(__file__).resolve().parents[3] / "shared" / "data" / "cxr"


def _png(path: Path, value: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(path)


def test_class_folders(tmp_path):
    _png(tmp_path / "A" / "1.png")
    _png(tmp_path / "A" / "2.png")
    _png(tmp_path / "B" / "3.png")
    (tmp_path / "B" / "notes.txt").write_text("x")
    ds = scan_dataset(tmp_path)
    assert ds.layout == "folders"
    assert ds.class_counts() == {"A": 2, "B": 1}
    assert {s.path for s in ds.samples} == {"A/1.png", "A/2.png", "B/3.png"}
    # A deeper file makes the folder unlabelled (tests/data/test_listing.py): no accidental classes.


def test_kaggle_layout_ignores_masks(tmp_path):
    for label in ("COVID", "Normal"):
        _png(tmp_path / label / "images" / f"{label}-1.png")
        _png(tmp_path / label / "masks" / f"{label}-1.png")
    ds = scan_dataset(tmp_path)
    assert ds.layout == "kaggle"
    assert sorted(s.path for s in ds.samples) == ["COVID/images/COVID-1.png", "Normal/images/Normal-1.png"]


def test_manifest_wins_and_lists_missing(tmp_path):
    _png(tmp_path / "x" / "a.png")
    _png(tmp_path / "x" / "b.png")
    _png(tmp_path / "x" / "c.png")
    (tmp_path / "manifest.csv").write_text(
        "file,label,patient_id\nx/a.png,L1,p1\nx/b.png,L2,\nx/missing.png,L1,p2\n../etc/passwd,L1,\n")
    ds = scan_dataset(tmp_path)
    assert ds.layout == "manifest"
    assert [(s.path, s.label, s.patient_id) for s in ds.samples] == [("x/a.png", "L1", "p1"), ("x/b.png", "L2", None)]
    assert {s.path: s.reason for s in ds.skipped} == {
        "x/missing.png": "listed but missing", "../etc/passwd": "path leaves the dataset folder"}


def test_symlink_outside_root_is_skipped(tmp_path):
    outside = tmp_path / "outside.png"
    _png(outside)
    root = tmp_path / "data"
    _png(root / "A" / "1.png")
    _png(root / "B" / "1.png")
    os.symlink(outside, root / "A" / "link.png")
    ds = scan_dataset(root)
    assert "A/link.png" not in {s.path for s in ds.samples}
    assert any(s.path == "A/link.png" and "outside" in s.reason for s in ds.skipped)


def test_unreadable_file_is_skipped_not_fatal(tmp_path, monkeypatch):
    _png(tmp_path / "A" / "1.png")
    _png(tmp_path / "B" / "1.png")
    _png(tmp_path / "B" / "2.png")
    os.chmod(tmp_path / "B" / "2.png", 0)
    real_access = os.access  # root reads mode-000 files anyway: answer as a normal user would
    monkeypatch.setattr(os, "access", lambda p, m: real_access(p, m) and os.stat(p).st_mode & 0o444 != 0)
    ds = scan_dataset(tmp_path)
    assert any(s.reason == "permission denied" for s in ds.skipped)


@pytest.mark.parametrize("setup, needle", [
    (lambda p: None, "holds no image files"),
    (lambda p: (p / "notes.txt").write_text("x"), "holds no image files"),
])
def test_errors(tmp_path, setup, needle):
    setup(tmp_path)
    with pytest.raises(DatasetError, match=needle):
        scan_dataset(tmp_path)


def test_missing_folder():
    with pytest.raises(DatasetError, match="not found"):
        scan_dataset("/nonexistent/xyz")


def test_names_with_spaces_and_non_ascii(tmp_path):
    _png(tmp_path / "Pneumonie virale" / "Röntgen 1 ü.png")
    _png(tmp_path / "Normal" / "正常.png")
    ds = scan_dataset(tmp_path)
    assert len(ds.samples) == 2


@pytest.mark.skipif(not CXR.is_dir(), reason="../shared/data/cxr is absent")
def test_real_set_has_patients_and_four_classes():
    ds = scan_dataset(CXR)
    assert ds.layout == "manifest" and len(ds.samples) == 776 and len(ds.classes) == 4
    assert ds.has_patients()
