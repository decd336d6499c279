"""List a dataset folder: which files, which labels, which patients. No pixels are read here."""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from core.data.imageio import SUPPORTED_SUFFIXES
from core.errors import UserError

MANIFEST = "manifest.csv"
IGNORED_DIRS = {"masks", "__macosx"}


class DatasetError(UserError):
    """The folder cannot be used as a dataset (one-line message)."""


@dataclass(frozen=True)
class Sample:
    """One image: path relative to the dataset root (POSIX), its label, its patient if known."""

    path: str
    label: str
    patient_id: str | None = None


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass(frozen=True)
class Dataset:
    """The images of a folder with labels; `skipped` lists files that could not be used."""

    root: Path
    samples: tuple[Sample, ...]
    skipped: tuple[Skipped, ...] = ()
    layout: str = "folders"  # folders | kaggle | manifest

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.samples]

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels))

    def class_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.labels).items()))

    def has_patients(self) -> bool:
        return any(s.patient_id for s in self.samples)

    def absolute(self, sample: Sample) -> Path:
        return self.root / sample.path

    def without(self, bad_paths: dict[str, str]) -> Dataset:
        """A copy with the given paths moved to `skipped` (path -> reason)."""
        keep = tuple(s for s in self.samples if s.path not in bad_paths)
        extra = tuple(Skipped(p, r) for p, r in sorted(bad_paths.items()))
        return Dataset(self.root, keep, self.skipped + extra, self.layout)


def check_dataset_folder(root: str | Path) -> Path:
    """The folder, resolved, if it exists and can be read (cheap: reads no file).

    Raises:
        DatasetError: missing, not a folder, or not readable.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"dataset folder not found: {root}")
    if not root.is_dir():
        raise DatasetError(f"not a folder: {root}")
    if not os.access(root, os.R_OK | os.X_OK):
        raise DatasetError(f"dataset folder is not readable: {root}")
    return root.resolve()


def scan_dataset(root: str | Path, *, min_classes: int = 2) -> Dataset:
    """Find the labelled images under `root`.

    Layouts, in order of precedence: `manifest.csv` (file,label[,patient_id]); the Kaggle
    "COVID-19 Radiography Database" layout `<Label>/images/*.png` (masks ignored); class
    folders `<Label>/**/*.{png,jpg,jpeg,dcm,...}`. Symlinks that leave the root and unreadable
    files are skipped and listed, never fatal.

    Raises:
        DatasetError: missing folder, no images, or fewer than `min_classes` labels.
    """
    root = check_dataset_folder(root)
    if (root / MANIFEST).is_file():
        dataset = _from_manifest(root)
    else:
        dataset = _from_folders(root)
    if not dataset.samples:
        raise DatasetError(f"no images found in {root} (expected <Label>/*.png|jpg|dcm or {MANIFEST})")
    if len(dataset.classes) < min_classes:
        raise DatasetError(
            f"{root} has a single class ({dataset.classes[0]}); need at least {min_classes} "
            "labelled class folders"
        )
    return dataset


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root)
        return True
    except (ValueError, OSError):
        return False


def _check_file(root: Path, path: Path) -> str | None:
    """Reason the file cannot be used, or None."""
    if not _inside(root, path):
        return "symlink points outside the dataset folder"
    if not path.is_file():
        return "not a file"
    if not os.access(path, os.R_OK):
        return "permission denied"
    if path.stat().st_size == 0:
        return "empty file"
    return None


def _from_folders(root: Path) -> Dataset:
    samples: list[Sample] = []
    skipped: list[Skipped] = []
    kaggle = False
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not _inside(root, class_dir):
            skipped.append(Skipped(class_dir.name, "symlink points outside the dataset folder"))
            continue
        if not os.access(class_dir, os.R_OK | os.X_OK):
            skipped.append(Skipped(class_dir.name, "permission denied"))
            continue
        images_dir = class_dir / "images"
        kaggle = kaggle or images_dir.is_dir()
        base = images_dir if images_dir.is_dir() else class_dir
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames
                                 if d.lower() not in IGNORED_DIRS and not d.startswith("."))
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if name.startswith(".") or path.suffix.lower() not in SUPPORTED_SUFFIXES:
                    continue
                rel = path.relative_to(root).as_posix()
                reason = _check_file(root, path)
                if reason:
                    skipped.append(Skipped(rel, reason))
                else:
                    samples.append(Sample(rel, class_dir.name, None))
    return Dataset(root, tuple(samples), tuple(skipped), "kaggle" if kaggle else "folders")


def _from_manifest(root: Path) -> Dataset:
    path = root / MANIFEST
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"cannot read {path}: {e}") from None
    if not rows or "file" not in rows[0] or "label" not in rows[0]:
        raise DatasetError(f"{path} needs the columns file,label[,patient_id]")
    samples: list[Sample] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()
    for row in rows:
        rel = (row.get("file") or "").strip().replace("\\", "/")
        label = (row.get("label") or "").strip()
        if not rel or rel in seen:
            continue
        seen.add(rel)
        if not label:
            skipped.append(Skipped(rel, "no label in manifest"))
            continue
        if rel.startswith("/") or ".." in Path(rel).parts:
            skipped.append(Skipped(rel, "path leaves the dataset folder"))
            continue
        reason = _check_file(root, root / rel) if (root / rel).exists() else "listed but missing"
        if reason:
            skipped.append(Skipped(rel, reason))
            continue
        patient = (row.get("patient_id") or "").strip() or None
        samples.append(Sample(rel, label, patient))
    return Dataset(root, tuple(samples), tuple(skipped), "manifest")
