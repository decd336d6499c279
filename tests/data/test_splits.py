"""Splits: deterministic, stratified, patient-disjoint."""

from collections import Counter

from core.data.dataset import Sample
from core.data.splits import assign_splits, load_splits, save_splits


def _samples(n_per_class=40, per_patient=3):
    out = []
    for label in ("A", "B", "C"):
        for i in range(n_per_class):
            out.append(Sample(f"{label}/{i}.png", label, f"{label}-p{i // per_patient}"))
    return out


def test_deterministic_and_seed_dependent():
    s = _samples()
    assert assign_splits(s, seed=1) == assign_splits(s, seed=1)
    assert assign_splits(s, seed=1) != assign_splits(s, seed=2)


def test_patient_disjoint():
    s = _samples()
    splits = assign_splits(s, seed=3)
    where = {}
    for sample, split in zip(s, splits, strict=False):
        where.setdefault(sample.patient_id, set()).add(split)
    assert all(len(v) == 1 for v in where.values())


def test_stratified_near_80_10_10():
    s = _samples(n_per_class=100, per_patient=1)
    splits = assign_splits(s, seed=0)
    for label in ("A", "B", "C"):
        counts = Counter(sp for sm, sp in zip(s, splits, strict=False) if sm.label == label)
        assert counts == {"train": 80, "val": 10, "test": 10}


def test_without_patient_ids_each_file_is_its_own_group():
    s = [Sample(f"x/{i}.png", "AB"[i % 2]) for i in range(40)]
    counts = Counter(assign_splits(s, seed=0))
    assert counts["test"] == 4 and counts["val"] == 4


def test_save_load_roundtrip(tmp_path):
    s = _samples(10)
    splits = assign_splits(s)
    save_splits(tmp_path / "splits.csv", s, splits)
    assert load_splits(tmp_path / "splits.csv") == (s, splits)
