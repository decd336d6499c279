"""The synthetic demo dataset: determinism, layout, tables, images, near-duplicates, lesions."""

from __future__ import annotations

import csv
import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.demo.anatomy import sample_anatomy
from core.demo.dataset import DemoDataError, DemoSummary, write_demo_dataset
from core.demo.lesions import CLASSES
from core.demo.phantom import render_phantom, sample_acquisition
from core.duplicates.calibration.edits import EDIT_KINDS

PER_CLASS, SIZE, SEED, FRACTION = 10, 64, 3, 0.5


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoSummary:
    return write_demo_dataset(tmp_path_factory.mktemp("a") / "demo", per_class=PER_CLASS,
                              size=SIZE, seed=SEED, duplicate_fraction=FRACTION)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _table(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _images(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.suffix in {".png", ".jpg"})


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(demo, tmp_path):
    again = write_demo_dataset(tmp_path / "same", per_class=PER_CLASS, size=SIZE, seed=SEED,
                               duplicate_fraction=FRACTION)
    assert _files(again.root) == _files(demo.root)
    other = _files(write_demo_dataset(tmp_path / "other", per_class=PER_CLASS, size=SIZE,
                                      seed=SEED + 1, duplicate_fraction=FRACTION).root)
    ours = _files(demo.root)
    pixels = {k: v for k, v in ours.items() if k.endswith(".png")}
    assert not set(pixels.values()) & set(other.values())  # no image repeats across seeds
    assert ours["manifest.csv"] != other["manifest.csv"]


def test_counts_classes_and_folders(demo):
    n_dup = round(FRACTION * PER_CLASS * len(CLASSES))
    assert demo.n_duplicates == n_dup
    assert demo.n_images == PER_CLASS * len(CLASSES) + n_dup
    assert demo.classes == CLASSES
    assert {"Normal", "COVID-19", "Consolidation", "Nodules_Cavities"} <= set(demo.classes)
    folders = sorted(p.name for p in demo.root.iterdir() if p.is_dir())
    assert folders == sorted(CLASSES)
    assert len(_images(demo.root)) == demo.n_images
    assert not list(demo.root.parent.glob(".*partial*"))  # the staging folder is gone


def test_manifest_lists_every_image_once_with_its_folder_as_label(demo):
    rows = _table(demo.root / "manifest.csv")
    assert list(rows[0]) == ["file", "label", "patient_id"]
    assert sorted(r["file"] for r in rows) == _images(demo.root)
    assert all(r["file"].split("/")[0] == r["label"] for r in rows)
    assert all(r["patient_id"] for r in rows)


def test_duplicates_table_matches_files_and_patients(demo):
    dups = _table(demo.root / "duplicates.csv")
    assert list(dups[0]) == ["file_a", "file_b", "kind"]
    assert len(dups) == demo.n_duplicates
    patient = {r["file"]: r["patient_id"] for r in _table(demo.root / "manifest.csv")}
    copies = {d["file_b"] for d in dups}
    originals = set(patient) - copies
    assert len(originals) == PER_CLASS * len(CLASSES)
    for d in dups:
        assert d["file_a"] in originals and d["file_b"] in patient
        assert d["kind"] in EDIT_KINDS
        assert d["file_a"].split("/")[0] == d["file_b"].split("/")[0]  # same class folder
        assert patient[d["file_a"]] == patient[d["file_b"]]
        assert d["file_b"].endswith(".jpg") == (d["kind"] == "jpeg")
    assert {d["kind"] for d in dups} == set(EDIT_KINDS)  # 20 copies cover all 8 kinds
    assert not any("dup" in f.lower() or "copy" in f.lower() for f in patient)


def test_some_patients_have_a_follow_up_within_one_class(demo):
    rows = _table(demo.root / "manifest.csv")
    copies = {d["file_b"] for d in _table(demo.root / "duplicates.csv")}
    visits = Counter(r["patient_id"] for r in rows if r["file"] not in copies)
    assert sum(n == 2 for n in visits.values()) == len(CLASSES) * (PER_CLASS // 10)
    labels_of = {}
    for r in rows:
        labels_of.setdefault(r["patient_id"], set()).add(r["label"])
    assert all(len(labels) == 1 for labels in labels_of.values())


def test_images_are_8_bit_grey_of_the_requested_size(demo):
    for rel in _images(demo.root):
        with Image.open(demo.root / rel) as img:
            assert img.mode == "L" and img.size == (SIZE, SIZE), rel


def test_readme_says_synthetic_with_parameters(demo):
    text = (demo.root / "README.txt").read_text()
    assert "SYNTHETIC" in text and "NOT PATIENT DATA" in text
    assert f"seed={SEED}" in text and f"per_class={PER_CLASS}" in text and f"size={SIZE}" in text


def _vector(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        a = np.asarray(img.convert("L").resize((32, 32), Image.Resampling.BILINEAR), dtype=np.float64)
    a = a.ravel() - a.mean()
    return a / np.linalg.norm(a)


def test_copies_are_close_to_their_original_and_not_to_the_rest(demo):
    dups = _table(demo.root / "duplicates.csv")
    copies = {d["file_b"] for d in dups}
    originals = [f for f in _images(demo.root) if f not in copies]
    vecs = np.stack([_vector(demo.root / f) for f in originals])  # (N, 1024)
    for d in dups:
        corr = vecs @ _vector(demo.root / d["file_b"])  # (N,)
        own = originals.index(d["file_a"])
        geometric = d["kind"] in ("crop", "rotate", "combo")  # up to 20 % per side, 10 degrees
        assert corr[own] > (0.6 if geometric else 0.8), d
        if not geometric:  # photometric edits keep every pixel in place; the others need geometry
            assert corr[own] > np.median(np.delete(corr, own)), d
            assert corr.argmax() == own, d


def test_existing_set_is_reused_and_a_taken_folder_refused(demo, tmp_path):
    again = write_demo_dataset(demo.root, per_class=PER_CLASS, size=SIZE, seed=SEED,
                               duplicate_fraction=FRACTION)
    assert again.seconds == 0.0 and again.n_images == demo.n_images
    with pytest.raises(DemoDataError, match="not empty"):
        write_demo_dataset(demo.root, per_class=PER_CLASS, size=SIZE, seed=SEED + 1,
                           duplicate_fraction=FRACTION)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(DemoDataError, match="not empty"):
        write_demo_dataset(taken, per_class=1, size=32)
    assert (taken / "notes.txt").read_text() == "mine"
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    with pytest.raises(DemoDataError, match="cannot write"):
        write_demo_dataset(blocked / "demo", per_class=1, size=32)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert write_demo_dataset(empty, per_class=1, size=32).n_images == len(CLASSES)


@pytest.mark.parametrize("kwargs", [{"per_class": 0}, {"size": 8}, {"size": 64.5},
                                    {"seed": -1}, {"duplicate_fraction": 1.5}])
def test_bad_parameters_raise_a_domain_error(kwargs, tmp_path):
    with pytest.raises(DemoDataError):
        write_demo_dataset(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def _lesion_difference(label: str, seed: int) -> np.ndarray:
    """|image with the lesions of `label| - same image without them|, at 64 px, no noise."""
    out = []
    for lab in ("Normal", label):
        rng = np.random.default_rng(seed)
        anatomy = sample_anatomy(rng)
        acq = dataclasses.replace(sample_acquisition(rng), noise=0.0, angle=0.0, shift=(0.0, 0.0))
        out.append(np.asarray(render_phantom(lab, anatomy, acq, 64, rng), dtype=np.float64))
    return np.abs(out[1] - out[0])  # (64, 64)


@pytest.mark.parametrize("seed", range(4))
def test_lesions_are_visible_at_64_px_where_the_class_says(seed):
    ggo = _lesion_difference("COVID-19", seed) > 12
    assert ggo.sum() >= 40
    left, right = ggo[:, :32].sum(), ggo[:, 32:].sum()
    assert min(left, right) > 0.2 * max(left, right)  # bilateral
    assert ggo[32:].sum() > ggo[:32].sum()  # lower zones
    cons = _lesion_difference("Consolidation", seed) > 20
    assert cons.sum() >= 60
    assert max(cons[:, :30].sum(), cons[:, 34:].sum()) > 4 * min(cons[:, :30].sum(), cons[:, 34:].sum())
    nod = _lesion_difference("Nodules_Cavities", seed) > 20
    assert nod.sum() >= 8  # the largest nodule is at least ~3 px across
    assert nod[:40].sum() > 0.9 * nod.sum()  # upper and mid zones
