"""The embedded demo dataset: SYNTHETIC chest-radiograph phantoms, not patient data.

Layout of a demo folder:

    OUT/<class>/<id>.png       originals (8-bit grey, size x size) and near-duplicate copies
                               (.png, or .jpg for JPEG re-encodes), named alike
    OUT/manifest.csv           file,label,patient_id for every image
    OUT/duplicates.csv         file_a,file_b,kind: each copy (file_b) and its original (file_a)
    OUT/README.txt             says the images are synthetic, with the parameters
    OUT/demo.json              the parameters, so a second call with the same ones is a no-op

The set is written to a hidden sibling folder and renamed into place, so an interrupted run
never leaves a half-written OUT behind. An OUT that exists and holds anything but a demo set
made with the same parameters is refused (DemoDataError); an empty OUT is fine.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.demo.anatomy import sample_anatomy
from core.demo.lesions import CLASSES
from core.demo.phantom import render_phantom, sample_acquisition
from core.duplicates.calibration.edits import EDIT_KINDS, encode_png, make_copy
from core.errors import UserError
from core.files import atomic_write_csv

FORMAT_VERSION = 1  # bump when the images change, so an old set is not mistaken for a new one
FOLLOW_UP_EVERY = 10  # one image in ten is a second visit of an earlier patient
_README = """SYNTHETIC DEMO DATA - NOT PATIENT DATA

Every image in this folder is a computer-generated chest-radiograph phantom made by
`python -m core demo-data` (cxr-similar, core/demo_data.py). No real person was imaged.

Parameters: per_class={per_class} size={size} seed={seed} duplicate_fraction={duplicate_fraction}
Classes (folder = label): {classes}
Images: {n_images}, of which {n_duplicates} are near-duplicate copies listed in duplicates.csv.
manifest.csv gives each image's label and (synthetic) patient id; a few patients have a
follow-up image, so splits must keep patients apart.
"""


class DemoDataError(UserError):
    """The demo dataset cannot be written (bad parameters, or the folder is taken)."""


@dataclass(frozen=True)
class DemoSummary:
    """What write_demo_dataset wrote."""

    root: Path
    n_images: int  # originals plus copies
    n_duplicates: int  # copies
    classes: tuple[str, ...]
    seconds: float  # 0.0 when an existing set was reused


@dataclass(frozen=True)
class _Planned:
    """One original image: which patient, which class, where it goes."""

    label: str
    class_idx: int
    index: int  # within the class
    patient_local: int  # within the class; follow-ups repeat an earlier one
    patient_id: str
    file: str  # relative to the dataset root


def write_demo_dataset(out: str | Path, per_class: int = 60, size: int = 256, seed: int = 0,
                       duplicate_fraction: float = 0.1) -> DemoSummary:
    """Write the synthetic demo dataset (same seed and parameters give byte-identical files).

    Args:
        out: folder to create; may exist if empty, or if it holds this very demo set.
        per_class: original images per class (>= 1).
        size: image side in pixels (32..2048).
        seed: seed for everything random.
        duplicate_fraction: copies per original, in [0, 1]; rounded to a whole number.

    Returns:
        DemoSummary of the folder.

    Raises:
        DemoDataError: bad parameters, or `out` is taken by something else.
    """
    params = _check_params(per_class, size, seed, duplicate_fraction)
    root = Path(out)
    if root.exists():
        reused = _reuse(root, params)
        if reused is not None:
            return reused
    start = time.perf_counter()
    tmp = root.parent / f".{root.name}.partial-{os.getpid()}"
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        n_images, n_dup = _write_all(tmp, params)
        _publish(tmp, root, params)
    except OSError as exc:  # unwritable place, full disk: one line, not a traceback
        raise DemoDataError(f"cannot write the demo set to {root}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return DemoSummary(root, n_images, n_dup, CLASSES, time.perf_counter() - start)


def _check_params(per_class: int, size: int, seed: int, duplicate_fraction: float) -> dict:
    """Validate the parameters and return them as the dict stored in demo.json."""
    if not isinstance(per_class, int) or per_class < 1:
        raise DemoDataError(f"--per-class must be a whole number >= 1, got {per_class!r}")
    if not isinstance(size, int) or not 32 <= size <= 2048:
        raise DemoDataError(f"--size must be a whole number of pixels in 32..2048, got {size!r}")
    if not isinstance(seed, int) or seed < 0:
        raise DemoDataError(f"--seed must be a whole number >= 0, got {seed!r}")
    if not 0.0 <= float(duplicate_fraction) <= 1.0:
        raise DemoDataError(f"duplicate fraction must be in [0, 1], got {duplicate_fraction!r}")
    return {"generator": "cxr-similar demo-data", "version": FORMAT_VERSION, "per_class": per_class,
            "size": size, "seed": seed, "duplicate_fraction": float(duplicate_fraction)}


def _reuse(root: Path, params: dict) -> DemoSummary | None:
    """Summary of an existing identical demo set; None for an empty folder; else refuse."""
    if not root.is_dir():
        raise DemoDataError(f"{root} exists and is not a folder")
    if not any(root.iterdir()):
        return None
    try:
        stored = json.loads((root / "demo.json").read_text())
    except (OSError, ValueError):
        stored = None
    if not isinstance(stored, dict) or {k: stored.get(k) for k in params} != params:
        raise DemoDataError(f"{root} is not empty and holds no demo set with these parameters; "
                            "choose a new folder or delete it")
    return DemoSummary(root, int(stored["n_images"]), int(stored["n_duplicates"]), CLASSES, 0.0)


def _plan(params: dict) -> list[_Planned]:
    """Decide every original's class, patient and file name, before drawing anything."""
    seed, per_class = params["seed"], params["per_class"]
    n_follow = per_class // FOLLOW_UP_EVERY
    n_patients = per_class - n_follow
    rng = np.random.default_rng([seed, 0])
    # shuffled ids and names so neither reveals the class or which file is a copy
    patient_ids = rng.permutation(len(CLASSES) * n_patients) + 1
    names = _unique_names(rng, len(CLASSES) * per_class)
    plan = []
    for ci, label in enumerate(CLASSES):
        follow_of = rng.choice(n_patients, size=n_follow, replace=False)
        for i in range(per_class):
            local = i if i < n_patients else int(follow_of[i - n_patients])
            pid = f"P{int(patient_ids[ci * n_patients + local]):05d}"
            plan.append(_Planned(label, ci, i, local, pid, f"{label}/{names.pop()}"))
    return plan


def _unique_names(rng: np.random.Generator, n: int) -> list[str]:
    """n distinct random 10-hex-digit stems."""
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n:
        name = f"cxr_{int(rng.integers(16**10)):010x}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def _write_all(tmp: Path, params: dict) -> tuple[int, int]:
    """Render and write every image and the three tables into `tmp`; return (images, copies)."""
    seed, size = params["seed"], params["size"]
    plan = _plan(params)
    for label in CLASSES:
        (tmp / label).mkdir(parents=True)
    rows, originals = [], {}
    for p in plan:
        anatomy = sample_anatomy(np.random.default_rng([seed, 1, p.class_idx, p.patient_local]))
        rng = np.random.default_rng([seed, 2, p.class_idx, p.index])
        img = render_phantom(p.label, anatomy, sample_acquisition(rng), size, rng)
        (tmp / (p.file + ".png")).write_bytes(encode_png(img).data)
        originals[p.file] = img
        rows.append((p.file + ".png", p.label, p.patient_id))

    n_dup = round(params["duplicate_fraction"] * len(plan))
    rng = np.random.default_rng([seed, 3])
    chosen = rng.choice(len(plan), size=n_dup, replace=False)
    kinds = [EDIT_KINDS[k % len(EDIT_KINDS)] for k in rng.permutation(max(n_dup, len(EDIT_KINDS)))]
    names = _unique_names(np.random.default_rng([seed, 4]), 2 * n_dup + len(plan))
    taken = {Path(p.file).name for p in plan}
    names = [n for n in names if n not in taken]
    dup_rows = []
    for j, idx in enumerate(chosen):
        p = plan[int(idx)]
        copy = make_copy(originals[p.file], kinds[j], np.random.default_rng([seed, 5, j]), keep_size=True)
        rel = f"{p.label}/{names[j]}{copy.suffix}"
        (tmp / rel).write_bytes(copy.data)
        rows.append((rel, p.label, p.patient_id))
        dup_rows.append((p.file + ".png", rel, kinds[j]))

    atomic_write_csv(tmp / "manifest.csv", ("file", "label", "patient_id"), sorted(rows))
    atomic_write_csv(tmp / "duplicates.csv", ("file_a", "file_b", "kind"), sorted(dup_rows))
    stored = {**params, "classes": list(CLASSES), "n_images": len(rows), "n_duplicates": n_dup}
    (tmp / "demo.json").write_text(json.dumps(stored, indent=2) + "\n")
    (tmp / "README.txt").write_text(_README.format(**{**stored, "classes": ", ".join(CLASSES)}))
    return len(rows), n_dup


def _publish(tmp: Path, root: Path, params: dict) -> None:
    """Move the finished set into place; tolerate a twin run that got there first."""
    try:
        if root.is_dir() and not any(root.iterdir()):
            root.rmdir()
        tmp.rename(root)
    except OSError:
        if root.is_dir() and _reuse(root, params) is not None:
            return  # another process wrote the same set meanwhile
        raise
