"""Embed any labelled folder with a run's model into a plain, checkable pair of files.

OUT/embeddings.npy: (N, D) float32, L2-normalised rows; OUT/items.csv: path,label,split,
patient_id, one row per vector in the same order (paths relative to the folder). Files that
cannot be read are left out of both and counted.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data.dataset import ListingOptions, scan_folders
from core.data.splits import load_splits
from core.embed.encoder import Encoder, embed_dataset
from core.errors import UserError
from core.files import atomic_write_bytes, atomic_write_csv
from core.run_folder import RunPaths

EMBEDDINGS_FILE = "embeddings.npy"
ITEMS_FILE = "items.csv"


class ExportError(UserError):
    """The output folder cannot be written (one-line message)."""


@dataclass(frozen=True)
class ExportResult:
    out: Path
    n_images: int
    n_skipped: int
    dim: int


def embed_folder(run_dir: str | Path, data: str | Path | Sequence[str | Path], out: str | Path,
                 device: str = "auto", progress: bool = False,
                 listing: ListingOptions | None = None) -> ExportResult:
    """Embed every image of `data` (a folder, or several: `core.data.dataset.scan_folders`)
    with the run's best checkpoint; write OUT's two files.

    The split column holds the run's split for images of the run's own dataset, else "".

    Raises:
        RunError / WeightsError: no usable checkpoint; DatasetError: `data` is not a dataset;
        ExportError: OUT exists as a file or cannot be created.
    """
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file; give a folder")
    encoder = Encoder.from_run(run_dir, device)
    config = encoder.config
    folders = [data] if isinstance(data, (str, Path)) else list(data)
    dataset = scan_folders(folders, options=listing)  # labels, views, header cache
    emb, bad = embed_dataset(encoder, dataset, progress=progress)
    splits = _run_splits(RunPaths(Path(run_dir)), Path(config.data), dataset.root)
    rows = [(path, label, splits.get(path, ""), patient)
            for path, label, patient in zip(emb.paths, emb.labels, emb.patients, strict=True)]
    vectors = emb.vectors
    try:
        out.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
        atomic_write_bytes(out / EMBEDDINGS_FILE, buf.getvalue())
        atomic_write_csv(out / ITEMS_FILE, ["path", "label", "split", "patient_id"], rows)
    except OSError as e:
        raise ExportError(f"cannot write to {out}: {e.strerror or e}") from None
    dim = int(vectors.shape[1]) if vectors.ndim == 2 else 0
    return ExportResult(out, len(rows), len(dataset.skipped) + len(bad), dim)


def _run_splits(paths: RunPaths, run_data: Path, folder: Path) -> dict[str, str]:
    """path -> split when `folder` is the run's own dataset and its split file exists."""
    try:
        same = run_data.resolve() == folder.resolve()
    except OSError:
        same = False
    if not same or not paths.splits.is_file():
        return {}
    samples, splits = load_splits(paths.splits)
    return {s.path: sp for s, sp in zip(samples, splits, strict=True)}


def load_export(out: str | Path) -> tuple[np.ndarray, list[dict[str, str]]]:
    """Read OUT's two files back: (N, D) vectors and N item rows."""
    out = Path(out)
    vectors = np.load(out / EMBEDDINGS_FILE, allow_pickle=False)
    with (out / ITEMS_FILE).open(newline="", encoding="utf-8") as f:
        return vectors, list(csv.DictReader(f))


__all__ = ["embed_folder", "load_export", "ExportResult", "ExportError"]
