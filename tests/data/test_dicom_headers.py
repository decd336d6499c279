"""DICOM headers as metadata: read once (cached where the caller says), patients from PatientID,
laterals and non-radiographs left out unless --views all, and --labels explicit."""

from pathlib import Path

import numpy as np
import pydicom
import pytest

from core.data.dataset import DatasetError, ListingOptions, scan_dataset
from tests.archives import dicom_tree, film, flat_films, write_dicom


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory):
    return dicom_tree(tmp_path_factory.mktemp("hospital"))


def test_headers_are_kept_per_image_and_give_the_patient(tree) -> None:
    ds = scan_dataset(tree.root)
    by_path = {s.path: s for s in ds.samples}
    s = by_path["HOSP00000/study1/series1/img2.dcm"]
    assert s.patient_id == "HOSP00000" and s.label == ""
    assert (s.header.study_date, s.header.view, s.header.modality) == ("20210315", "PA", "DX")
    assert s.header.series_uid.endswith(".2.0.1") and s.header.sop_uid
    assert by_path[tree.no_patient].patient_id is None
    assert by_path[tree.monochrome1].header.modality == "DX"
    assert hash(s)  # Sample stays hashable
    # patient HOSP00000: three studies, plus the re-export
    assert len({x.header.study_date[:4] for x in ds.samples if x.patient_id == "HOSP00000"}) == 3
    assert ds.layout == "unlabelled" and ds.classes == []


def test_laterals_and_non_radiographs_are_skipped_with_the_reason(tree) -> None:
    ds = scan_dataset(tree.root)
    reasons = {s.path: s.reason for s in ds.skipped}
    assert reasons[tree.lateral] == "lateral view (ViewPosition LL)"
    assert reasons[tree.ct] == "not a radiograph (Modality CT)"
    assert tree.lateral not in {s.path for s in ds.samples}
    everything = scan_dataset(tree.root, options=ListingOptions(views="all"))
    assert {tree.lateral, tree.ct} <= {s.path for s in everything.samples}
    assert len(everything.samples) == len(ds.samples) + 2


def test_only_laterals_is_named_not_called_empty(tmp_path: Path) -> None:
    write_dicom(tmp_path / "a.dcm", film(1), sop_uid="1.2.3.1", view="LAT")
    with pytest.raises(DatasetError, match=r"holds 1 image file but none can be used \(1 lateral view"):
        scan_dataset(tmp_path)


def test_second_listing_reads_no_header(tree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = pydicom.dcmread

    def counting(*a, **k):
        calls.append(k)
        return real(*a, **k)

    monkeypatch.setattr(pydicom, "dcmread", counting)
    cache = tmp_path / "run" / "dicom-headers.csv"
    first = scan_dataset(tree.root, options=ListingOptions(header_cache=cache))
    assert len(calls) == tree.n_files and cache.is_file()
    assert all(k.get("stop_before_pixels") for k in calls)  # the header only
    calls.clear()
    second = scan_dataset(tree.root, options=ListingOptions(header_cache=cache))
    assert calls == [] and second == first
    # a rewritten file is read again, and only it
    write_dicom(tmp_path / "x.dcm", film(3), sop_uid="1.2.3.9")  # unrelated folder: not listed
    target = tree.root / tree.no_patient
    target.write_bytes(target.read_bytes())
    import os

    os.utime(target, ns=(1, 1))
    try:
        scan_dataset(tree.root, options=ListingOptions(header_cache=cache))
        assert len(calls) == 1
    finally:
        os.utime(target)
    calls.clear()
    scan_dataset(tree.root)  # no cache given: every header read, nothing written in the archive
    assert len(calls) == tree.n_files
    assert not any(p.name.endswith(".csv") for p in tree.root.rglob("*"))


def test_a_damaged_cache_is_rebuilt(tree, tmp_path: Path) -> None:
    cache = tmp_path / "h.csv"
    cache.write_bytes(b"\x00garbage,\n1,2")
    ds = scan_dataset(tree.root, options=ListingOptions(header_cache=cache))
    assert ds == scan_dataset(tree.root)
    assert cache.read_text().startswith("path,mtime_ns,size,PatientID")


def test_folders_per_patient_are_not_classes(tmp_path: Path) -> None:
    for p in range(3):
        for i in range(2):
            write_dicom(tmp_path / f"PAT{p}" / f"{i}.dcm", film(10 * p + i), sop_uid=f"1.2.3.{p}.{i}",
                        patient_id=f"ID{p}")
    assert scan_dataset(tmp_path).classes == []  # auto: one PatientID per folder -> patients
    labelled = scan_dataset(tmp_path, options=ListingOptions(labels="folders"))
    assert labelled.class_counts() == {"PAT0": 2, "PAT1": 2, "PAT2": 2}


def test_labels_option(tmp_path: Path) -> None:
    for label in ("COVID", "Normal"):
        flat_films(tmp_path / label / "deep", n_png=2, n_jpeg=0)
    assert scan_dataset(tmp_path).classes == []  # auto: deeper than a class folder
    assert scan_dataset(tmp_path, options=ListingOptions(labels="folders")).class_counts() == {
        "COVID": 2, "Normal": 2}
    with pytest.raises(DatasetError, match="--labels manifest: .* has no manifest.csv"):
        scan_dataset(tmp_path, options=ListingOptions(labels="manifest"))
    (tmp_path / "manifest.csv").write_text(
        "file,label,patient_id\nCOVID/deep/film00.png,COVID,P1\nNormal/deep/film00.png,Normal,P2\n")
    assert scan_dataset(tmp_path, options=ListingOptions(labels="manifest")).classes == ["COVID", "Normal"]
    none = scan_dataset(tmp_path, options=ListingOptions(labels="none"))
    assert none.classes == [] and [s.patient_id for s in none.samples] == ["P1", "P2"]
    assert len(scan_dataset(tmp_path, options=ListingOptions(labels="folders")).samples) == 4
    with pytest.raises(DatasetError, match="unknown --labels 'classes'"):
        ListingOptions(labels="classes")


def test_pngs_have_no_header(tmp_path: Path) -> None:
    flat_films(tmp_path, n_png=2, n_jpeg=1)
    ds = scan_dataset(tmp_path)
    assert [s.header for s in ds.samples] == [None] * 3 and len(ds.samples) == 3
    assert np.all([s.patient_id is None for s in ds.samples])
