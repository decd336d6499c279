"""Deterministic, patient-disjoint train/val/test splits, stratified by label where known.

Labels are optional: unlabelled images (label "") form one stratum of their own, so a folder
without labels gets a random patient-disjoint split with the same shares.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from core.data.dataset import Sample
from core.files import atomic_write_csv

SPLITS = ("train", "val", "test")


def assign_splits(samples: list[Sample] | tuple[Sample, ...], seed: int = 0,
                  fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> list[str]:
    """Give every sample a split name.

    Images of one patient stay in one split (samples without a patient id are their own
    group). Groups are stratified by their majority label ("" for unlabelled images: one
    stratum of their own) and shuffled with `seed`; val and test are filled up to their share
    of each label, the rest goes to train.

    Args:
        samples: the dataset's samples.
        seed: shuffling seed; the same seed and samples give the same splits.
        fractions: train, val, test shares (summing to 1).

    Returns:
        One of "train" | "val" | "test" per sample, in sample order.
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        groups[f"p:{s.patient_id}" if s.patient_id else f"f:{s.path}"].append(i)
    by_label: dict[str, list[str]] = defaultdict(list)
    for key, members in groups.items():
        label = Counter(samples[i].label for i in members).most_common(1)[0][0]
        by_label[label].append(key)

    rng = np.random.default_rng(seed)
    out = ["train"] * len(samples)
    for label in sorted(by_label):
        keys = sorted(by_label[label])
        rng.shuffle(keys)
        n = sum(len(groups[k]) for k in keys)
        targets = {name: _target(n, frac) for name, frac in zip(SPLITS[1:], fractions[1:], strict=True)}
        filled = {"val": 0, "test": 0}
        for key in keys:
            size = len(groups[key])
            split = "train"
            for name in ("test", "val"):
                if filled[name] + size <= targets[name] or (filled[name] == 0 and targets[name] > 0
                                                             and size <= 2 * targets[name]):
                    split = name
                    break
            if split != "train":
                filled[split] += size
            for i in groups[key]:
                out[i] = split
    return out


def _target(n: int, frac: float) -> int:
    t = int(round(n * frac))
    return max(t, 1) if n >= 3 and frac > 0 else t


def save_splits(path: Path, samples: list[Sample] | tuple[Sample, ...], splits: list[str]) -> None:
    """Write `path,label,patient_id,split` rows (the run's record of its split)."""
    atomic_write_csv(path, ["path", "label", "patient_id", "split"],
                     [(s.path, s.label, s.patient_id or "", sp) for s, sp in zip(samples, splits, strict=True)])


def load_splits(path: Path) -> tuple[list[Sample], list[str]]:
    """Read what save_splits wrote."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    samples = [Sample(r["path"], r["label"], r["patient_id"] or None) for r in rows]
    return samples, [r["split"] for r in rows]
