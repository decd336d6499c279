"""List a folder of images: which files, which labels, which patients. No pixels are read here.

This is the one listing of a folder: training, embedding, evaluation, duplicates, `add` and
`embed-archive` (`core.embed.shards.list_archive`) all go through `scan_dataset` (`scan_folders`
joins several folders: `train --data A --data B`). The walk is recursive; hidden files and
folders, `masks` folders and symlinks leading out of the folder are left out (those symlinks,
unreadable and empty files are listed in `skipped` with the reason).

Labels are optional. Where they come from, in order of precedence:

1. `manifest.csv` (`file[,label][,patient_id]`): the manifest is the listing of a dataset; a
   row with an empty label (or a manifest without a `label` column) is an unlabelled image.
   An archive (`list_archive`: embed-archive, add) walks the folder instead, manifest or not.
2. Class folders, only when EVERY image lies directly inside a top-level folder
   (`<Label>/<file>`, depth 1), or inside its `images` folder (the Kaggle "COVID-19
   Radiography Database" layout `<Label>/images/<file>`, its `masks` ignored). The top-level
   folder is the label; one such folder is a valid one-class dataset.
3. Otherwise nothing: every image has the label "" (unknown). Images at the top level, or
   anything deeper than a class folder (a hospital tree `PATIENT/study/series/img.dcm`), make
   the whole folder unlabelled, so patient or study folders never become classes by accident.

In `auto` (the default) a depth-1 tree whose DICOM headers give each top-level folder one
`PatientID`, a different one per folder, is a folder per patient: unlabelled. `--labels`
(`ListingOptions.labels`) says it explicitly instead: `folders` (the top-level folder is the
label at any depth, a manifest ignored), `manifest` (manifest.csv required), `none` (no labels).

A folder with one class or none is a valid dataset (SimCLR learns without labels); only the
label metrics of an evaluation need labels.

DICOM files bring their header (`core.data.dicom_headers`, read once, cached where the caller
says): `PatientID` is the patient where no manifest gives one; laterals and non-radiograph
modalities are moved to `skipped` with the reason unless `views="all"`.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from core.config import LABEL_SOURCES, VIEWS
from core.data.dicom_headers import DicomHeader, read_headers, view_reason
from core.data.imageio import SUPPORTED_SUFFIXES
from core.errors import UserError

MANIFEST = "manifest.csv"
IGNORED_DIRS = {"masks", "__macosx"}
UNLABELLED = "unlabelled"  # the layout of a folder that gives no labels
LABELS = LABEL_SOURCES  # where labels come from (--labels)
HEADER_CACHE = "dicom-headers.csv"  # a run folder's cache of its datasets' DICOM headers


class DatasetError(UserError):
    """The folder cannot be used as a dataset (one-line message)."""


@dataclass(frozen=True)
class Sample:
    """One image: path relative to the dataset root (POSIX), its label ("" when unknown), its
    patient if known, and its DICOM header (None for other files)."""

    path: str
    label: str
    patient_id: str | None = None
    header: DicomHeader | None = None


@dataclass(frozen=True)
class ListingOptions:
    """How a folder is listed: where labels come from (LABELS), which views are kept (VIEWS:
    `frontal` leaves laterals and non-radiographs out), where DICOM headers are cached (a
    file the caller owns, e.g. in the run folder; None: no cache)."""

    labels: str = "auto"
    views: str = "frontal"
    header_cache: Path | None = None

    def __post_init__(self) -> None:
        if self.labels not in LABELS:
            raise DatasetError(f"unknown --labels '{self.labels}' (choose from {', '.join(LABELS)})")
        if self.views not in VIEWS:
            raise DatasetError(f"unknown --views '{self.views}' (choose from {', '.join(VIEWS)})")


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass(frozen=True)
class Dataset:
    """The images of a folder, labelled or not; `skipped` lists files that could not be used."""

    root: Path
    samples: tuple[Sample, ...]
    skipped: tuple[Skipped, ...] = ()
    layout: str = "folders"  # folders | kaggle | manifest | unlabelled

    @property
    def labels(self) -> list[str]:
        """One label per sample, "" where unknown."""
        return [s.label for s in self.samples]

    @property
    def classes(self) -> list[str]:
        """The known labels, sorted ([] for an unlabelled folder)."""
        return sorted({s.label for s in self.samples if s.label})

    def class_counts(self) -> dict[str, int]:
        """Images per known label (unlabelled images are not a class)."""
        return dict(sorted(Counter(s.label for s in self.samples if s.label).items()))

    def has_labels(self) -> bool:
        return any(s.label for s in self.samples)

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


def check_dataset_folders(roots: Sequence[str | Path]) -> list[Path]:
    """The folders, resolved, once each exists and can be read and none lies inside another
    (cheap: reads no file).

    Raises:
        DatasetError: no folder, one missing or unreadable, one given twice or inside another.
    """
    if not roots:
        raise DatasetError("give at least one dataset folder")
    resolved = [check_dataset_folder(r) for r in roots]
    for i, a in enumerate(resolved):
        for b in resolved[:i]:
            if a.is_relative_to(b) or b.is_relative_to(a):
                inner, outer = (a, b) if a.is_relative_to(b) else (b, a)
                where = "given twice" if a == b else f"inside --data {outer}"
                raise DatasetError(f"--data {inner} is {where}; give each folder once, none inside another")
    return resolved


def scan_dataset(root: str | Path, *, min_classes: int = 0,
                 options: ListingOptions | None = None) -> Dataset:
    """List the images under `root`, with their labels where the folder gives them.

    See the module docstring for the layouts and the label rule. Symlinks that leave the root
    and unreadable or empty files are skipped and listed, never fatal.

    Args:
        root: the folder.
        min_classes: refuse a folder with fewer labelled classes (0: labels optional).
        options: labels, views and the header cache (default: auto, frontal, no cache).

    Raises:
        DatasetError: missing folder, no usable image (the message says whether the folder
            holds no image file or only unusable ones), or fewer than `min_classes` labels.
    """
    options = options or ListingOptions()
    root = check_dataset_folder(root)
    if options.labels == "manifest" and not (root / MANIFEST).is_file():
        raise DatasetError(f"--labels manifest: {root} has no {MANIFEST}")
    dataset = list_folder(root, manifest=options.labels != "folders")
    dataset = _with_headers(dataset, options)
    if not dataset.samples:
        raise DatasetError(_nothing_usable(root, dataset))
    if len(dataset.classes) < min_classes:
        found = ", ".join(dataset.classes) or "none"
        raise DatasetError(
            f"{root} has {len(dataset.samples)} images in {len(dataset.classes)} labelled "
            f"class{'es' if len(dataset.classes) != 1 else ''} ({found}); need at least {min_classes}"
            + (" (a single class)" if len(dataset.classes) == 1 else ""))
    return dataset


def scan_folders(roots: Sequence[str | Path], *, options: ListingOptions | None = None) -> Dataset:
    """The films of several folders (`train --data A --data B`) as one dataset rooted at the first.

    Each folder is listed by `scan_dataset` with the same options (its own labels, layout and
    headers). The first folder's films keep paths relative to it; a later folder's are absolute
    (its resolved folder joined with the relative path, as `add` records films from elsewhere),
    so every path names its folder and `Dataset.absolute` opens it. Patient ids are one
    namespace: one id in two folders is one patient (its films stay in one split).

    Args:
        roots: the folders, at least one; none may lie inside another.
        options: labels, views and the header cache, for every folder.

    Raises:
        DatasetError: a folder is missing, holds no usable image, or lies inside another
            (or is given twice): one line naming it.
    """
    resolved = check_dataset_folders(roots)
    first = scan_dataset(resolved[0], options=options)
    samples, skipped, layouts = list(first.samples), list(first.skipped), [first.layout]
    for root in resolved[1:]:
        more = scan_dataset(root, options=options)
        samples += [replace(s, path=(root / s.path).as_posix()) for s in more.samples]
        skipped += [replace(s, path=(root / s.path).as_posix()) for s in more.skipped]
        layouts.append(more.layout)
    return Dataset(first.root, tuple(samples), tuple(skipped), "+".join(dict.fromkeys(layouts)))


def list_folder(root: Path, *, manifest: bool = True) -> Dataset:
    """The listing of the resolved folder `root`, possibly without samples (never raises on an
    empty folder; a damaged manifest.csv raises DatasetError).

    `manifest=False` walks the folder even when it holds a manifest.csv (an archive: every
    image file counts, labels play no part).
    """
    if manifest and (root / MANIFEST).is_file():
        return _from_manifest(root)
    return _from_walk(root)


def list_archive_folder(root: Path, options: ListingOptions | None = None) -> Dataset:
    """An archive's listing of the resolved folder `root` (`embed-archive`, `add`): every image
    file, a manifest.csv or class folders notwithstanding (no labels), DICOM headers read
    through `options.header_cache`, and other views moved to `skipped` as `scan_dataset` does
    unless `options.views` is all. Never raises on an empty folder."""
    options = replace(options or ListingOptions(), labels="none")
    return _with_headers(list_folder(root, manifest=False), options)


def no_image_files(root: Path) -> str:
    """The refusal for a folder that holds no image file at all."""
    return (f"{root} holds no image files (no images found in it or its subfolders; "
            f"expected {', '.join(sorted(SUPPORTED_SUFFIXES))})")


def _nothing_usable(root: Path, dataset: Dataset) -> str:
    """Why `dataset` has no sample: no image file at all, or only unusable ones (named)."""
    if dataset.layout == "manifest":
        reasons = Counter(s.reason for s in dataset.skipped)
        detail = ", ".join(f"{n} {r}" for r, n in reasons.most_common()) or "no rows"
        return f"{root / MANIFEST} lists no usable image ({detail})"
    files = [s for s in dataset.skipped if s.reason in FILE_REASONS or s.reason.startswith(VIEW_REASONS)]
    if not files:
        return no_image_files(root)
    reasons = Counter(s.reason for s in files)
    detail = ", ".join(f"{n} {r}" for r, n in reasons.most_common())
    return (f"{root} holds {len(files)} image file{'s' if len(files) != 1 else ''} but none can "
            f"be used ({detail}; first: {files[0].path})")


def walk_images(root: Path) -> Iterator[tuple[str, bool]]:
    """(path relative to the resolved `root` as POSIX, is_file) for every image file name under
    it, folders and files in sorted order; hidden names and `masks` folders are left out.

    Symlinked folders are not followed; they come back as (path, False), as do folders that
    cannot be read.
    """
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            if folder != root:
                yield folder.relative_to(root).as_posix(), False
            continue
        subdirs = []
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_link = entry.is_symlink()
            except OSError:
                continue
            path = Path(entry.path)
            if is_dir:
                if name.lower() in IGNORED_DIRS:
                    continue
                if os.access(path, os.R_OK | os.X_OK):
                    subdirs.append(path)
                else:  # named as skipped, as a user without the right would meet it (root too)
                    yield path.relative_to(root).as_posix(), False
            elif is_link and path.is_dir():
                yield path.relative_to(root).as_posix(), False
            elif path.suffix.lower() in SUPPORTED_SUFFIXES:
                yield path.relative_to(root).as_posix(), True
        stack.extend(reversed(subdirs))


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root)
        return True
    except (ValueError, OSError):
        return False


OUTSIDE = "symlink points outside the dataset folder"
FILE_REASONS = frozenset({OUTSIDE, "not a file", "permission denied", "empty file"})
VIEW_REASONS = ("lateral view", "not a radiograph")  # how view_reason's reasons begin


def _check_file(root: Path, path: Path) -> str | None:
    """Reason the file cannot be used, or None."""
    if path.is_symlink() and not _inside(root, path):
        return OUTSIDE
    if not path.is_file():
        return "not a file"
    if not os.access(path, os.R_OK):
        return "permission denied"
    if path.stat().st_size == 0:
        return "empty file"
    return None


def _folder_layout(paths: list[str]) -> str:
    """"folders" or "kaggle" when every image lies in a class folder (`<L>/<file>` or
    `<L>/images/<file>`), else UNLABELLED (see the module docstring)."""
    kaggle = False
    for rel in paths:
        parts = rel.split("/")
        if len(parts) == 3 and parts[1] == "images":
            kaggle = True
        elif len(parts) != 2:
            return UNLABELLED
    return "kaggle" if kaggle else "folders"


def _from_walk(root: Path) -> Dataset:
    found: list[str] = []
    skipped: list[Skipped] = []
    skipped_files: list[str] = []  # files (not folders) that count for the layout
    for rel, is_file in walk_images(root):
        path = root / rel
        if not is_file:
            reason = ("permission denied" if path.is_dir() and not path.is_symlink()
                      else OUTSIDE if not _inside(root, path) else "symlinked folder (not followed)")
            skipped.append(Skipped(rel, reason))
            continue
        reason = _check_file(root, path)
        if reason:
            skipped.append(Skipped(rel, reason))
            if reason in FILE_REASONS:
                skipped_files.append(rel)
        else:
            found.append(rel)
    layout = _folder_layout(found + skipped_files)
    if layout == UNLABELLED:
        return Dataset(root, tuple(Sample(p, "", None) for p in found), tuple(skipped), layout)
    return Dataset(root, tuple(Sample(p, p.split("/")[0], None) for p in found), tuple(skipped), layout)


def _from_manifest(root: Path) -> Dataset:
    path = root / MANIFEST
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"cannot read {path}: {e}") from None
    if not rows or "file" not in rows[0]:
        raise DatasetError(f"{path} needs the columns file[,label][,patient_id]")
    samples: list[Sample] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()
    for row in rows:
        rel = (row.get("file") or "").strip().replace("\\", "/")
        label = (row.get("label") or "").strip()
        if not rel or rel in seen:
            continue
        seen.add(rel)
        if rel.startswith("/") or ".." in Path(rel).parts:
            skipped.append(Skipped(rel, "path leaves the dataset folder"))
            continue
        if not (root / rel).exists():
            reason: str | None = "listed but missing"
        else:  # a listed path may pass through a symlinked folder: check where it leads
            reason = _check_file(root, root / rel) if _inside(root, root / rel) else OUTSIDE
        if reason:
            skipped.append(Skipped(rel, reason))
            continue
        patient = (row.get("patient_id") or "").strip() or None
        samples.append(Sample(rel, label, patient))
    return Dataset(root, tuple(samples), tuple(skipped), "manifest")


def _with_headers(dataset: Dataset, options: ListingOptions) -> Dataset:
    """Headers on the DICOM samples, patients from `PatientID` where none is known, labels as
    `options.labels` says, and other views moved to `skipped` unless `options.views` is all."""
    headers = read_headers(dataset.root, [s.path for s in dataset.samples], options.header_cache)
    samples = [replace(s, header=headers.get(s.path),
                       patient_id=s.patient_id or (headers[s.path].patient_id
                                                   if s.path in headers else None) or None)
               for s in dataset.samples]
    layout = dataset.layout
    if options.labels == "none" or (options.labels == "auto" and layout in ("folders", "kaggle")
                                    and _patient_folders(samples)):
        samples, layout = [replace(s, label="") for s in samples], UNLABELLED
    elif options.labels == "folders":
        samples = [replace(s, label=s.path.split("/")[0] if "/" in s.path else "") for s in samples]
        layout = "folders"
    skipped = list(dataset.skipped)
    if options.views != "all":
        keep = []
        for s in samples:
            reason = view_reason(s.header)
            if reason:
                skipped.append(Skipped(s.path, reason))
            else:
                keep.append(s)
        samples = keep
    return Dataset(dataset.root, tuple(samples), tuple(skipped), layout)


def _patient_folders(samples: list[Sample]) -> bool:
    """True when class folders are really patients: every film has a header PatientID, each
    top-level folder holds one, and two or more folders hold different ones."""
    if len(samples) < 2 or any(s.header is None or not s.header.patient_id for s in samples):
        return False
    by_folder: dict[str, set[str]] = {}
    for s in samples:
        if "/" not in s.path:
            return False
        by_folder.setdefault(s.path.split("/")[0], set()).add(s.header.patient_id)  # type: ignore[union-attr]
    ids = [next(iter(v)) for v in by_folder.values() if len(v) == 1]
    return len(by_folder) >= 2 and len(ids) == len(by_folder) and len(set(ids)) == len(ids)
