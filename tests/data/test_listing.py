"""One listing of a folder (`scan_dataset`, which `list_archive` uses): labels optional.

Flat folders, one-class folders and nested patient/study/series trees are valid datasets
without labels; class folders and manifest.csv still give labels; folders deeper than a class
folder never become classes by accident.
"""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data.dataset import DatasetError, Sample, scan_dataset
from core.data.splits import assign_splits
from core.embed.shards import list_archive


def _png(path: Path, value: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(path)


def test_flat_folder_is_an_unlabelled_dataset(tmp_path: Path) -> None:
    for i in range(5):
        _png(tmp_path / f"film{i}.png", 10 * i)
    ds = scan_dataset(tmp_path)
    assert ds.layout == "unlabelled"
    assert [s.path for s in ds.samples] == [f"film{i}.png" for i in range(5)]
    assert set(ds.labels) == {""} and ds.classes == [] and ds.class_counts() == {}
    assert not ds.has_labels()
    assert list_archive(tmp_path) == [s.path for s in ds.samples]


def test_one_class_folder_is_a_valid_labelled_dataset(tmp_path: Path) -> None:
    for i in range(3):
        _png(tmp_path / "Normal" / f"{i}.png")
    ds = scan_dataset(tmp_path)
    assert ds.layout == "folders" and ds.class_counts() == {"Normal": 3}


def test_nested_patient_study_series_tree_gets_no_labels(tmp_path: Path) -> None:
    for p in range(3):
        for st in range(2):
            _png(tmp_path / f"HOSP{p:05d}" / f"study{st}" / "series1" / "img0.png")
    ds = scan_dataset(tmp_path)
    assert ds.layout == "unlabelled" and ds.classes == []  # patients are not classes
    assert len(ds.samples) == 6 and ds.samples[0].path == "HOSP00000/study0/series1/img0.png"
    assert list_archive(tmp_path) == sorted(s.path for s in ds.samples)


@pytest.mark.parametrize("stray", ["top.png", "A/deeper/x.png"])
def test_one_image_outside_a_class_folder_makes_the_folder_unlabelled(tmp_path: Path, stray: str) -> None:
    _png(tmp_path / "A" / "1.png")
    _png(tmp_path / "B" / "2.png")
    _png(tmp_path / stray)
    ds = scan_dataset(tmp_path)
    assert ds.layout == "unlabelled" and len(ds.samples) == 3 and ds.classes == []


def test_class_folders_give_labels(tmp_path: Path) -> None:
    _png(tmp_path / "COVID" / "1.png")
    _png(tmp_path / "COVID" / "2.png")
    _png(tmp_path / "Normal" / "3.png")
    _png(tmp_path / "__MACOSX" / "Normal" / "3.png")  # a Mac zip's resource folder is no class
    ds = scan_dataset(tmp_path)
    assert ds.layout == "folders" and ds.has_labels()
    assert ds.class_counts() == {"COVID": 2, "Normal": 1}


def test_manifest_gives_labels_even_to_a_nested_tree(tmp_path: Path) -> None:
    _png(tmp_path / "P1" / "s0" / "a.png")
    _png(tmp_path / "P2" / "s0" / "b.png")
    _png(tmp_path / "P2" / "s1" / "c.png")
    (tmp_path / "manifest.csv").write_text(
        "file,label,patient_id\nP1/s0/a.png,COVID,P1\nP2/s0/b.png,Normal,P2\nP2/s1/c.png,,P2\n")
    ds = scan_dataset(tmp_path)
    assert ds.layout == "manifest"
    assert [(s.path, s.label, s.patient_id) for s in ds.samples] == [
        ("P1/s0/a.png", "COVID", "P1"), ("P2/s0/b.png", "Normal", "P2"), ("P2/s1/c.png", "", "P2")]
    assert ds.classes == ["COVID", "Normal"]


def test_manifest_without_a_label_column_is_unlabelled(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    (tmp_path / "manifest.csv").write_text("file,patient_id\na.png,P1\n")
    ds = scan_dataset(tmp_path)
    assert [(s.label, s.patient_id) for s in ds.samples] == [("", "P1")]


def test_refusal_names_what_it_found(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="holds no image files"):
        scan_dataset(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"holds 1 image file but none can be used \(1 empty file"):
        scan_dataset(tmp_path)


def test_unlabelled_split_is_random_and_patient_disjoint() -> None:
    samples = [Sample(f"p{i // 2}/{i}.png", "", f"p{i // 2}") for i in range(40)]
    splits = assign_splits(samples, seed=0)
    assert {sp: splits.count(sp) for sp in ("train", "val", "test")} == {"train": 32, "val": 4, "test": 4}
    by_patient: dict[str, set[str]] = {}
    for s, sp in zip(samples, splits, strict=True):
        by_patient.setdefault(s.patient_id or "", set()).add(sp)
    assert all(len(v) == 1 for v in by_patient.values())
