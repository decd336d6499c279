"""Embed images with a trained backbone and keep the vectors with the run."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.files import atomic_write_bytes, atomic_write_csv
from core.run_folder import RunError, RunPaths


@dataclass(frozen=True)
class Embeddings:
    """L2-normalised backbone features of a dataset, one row per image.

    paths are relative to the dataset root; splits are train/val/test ("" when unknown).
    """

    paths: list[str]
    labels: list[str]
    splits: list[str]
    patients: list[str]
    vectors: np.ndarray  # (N, D) float32, unit rows

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, split: str) -> np.ndarray:
        return np.array([i for i, s in enumerate(self.splits) if s == split], dtype=np.int64)

    def save(self, folder: str | Path) -> None:
        """Write embeddings.npy, labels.npy, items.csv and the test split's arrays in `folder`.

        A run's served set is written through `core.index.artifacts.write_artifact_set`,
        which calls this on a new generation's folder.
        """
        p = RunPaths(folder, generation=None)
        _save_npy(p.embeddings, self.vectors)
        _save_npy(p.labels, np.array(self.labels, dtype=str))
        test = self.subset("test")
        _save_npy(p.test_embeddings, self.vectors[test])
        _save_npy(p.test_labels, np.array(self.labels, dtype=str)[test] if len(test) else np.array([], dtype=str))
        atomic_write_csv(p.items, ["path", "label", "split", "patient_id"],
                         zip(self.paths, self.labels, self.splits, self.patients, strict=True))

    @staticmethod
    def load(run_dir: str | Path, paths: RunPaths | None = None) -> Embeddings:
        """The served embeddings of a run (or those saved in a plain folder).

        Raises:
            RunError: missing, unreadable or malformed files, or rows that do not match the
                items (one line that says to re-embed).
        """
        p = paths or RunPaths(run_dir)
        redo = f"re-embed the run: python -m core embed --run {p.root}"
        try:
            vectors = np.load(p.embeddings, allow_pickle=False)
            with p.items.open(newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            items = ([r["path"] for r in rows], [r["label"] for r in rows],
                     [r["split"] for r in rows], [r.get("patient_id") or "" for r in rows])
        except FileNotFoundError as e:
            raise RunError(f"{p.root} has no {Path(e.filename or '').name or 'embeddings'} "
                           "(training not finished?)") from None
        except (OSError, ValueError, EOFError, KeyError, TypeError, csv.Error) as e:
            raise RunError(f"unreadable embeddings in {p.root} ({type(e).__name__}); {redo}") from None
        # csv reads NUL bytes since Python 3.11; a path holding one cannot be opened later
        damaged = next((n for n, r in enumerate(rows, 1) if any("\0" in str(v) for v in r.values())), 0)
        if damaged:
            raise RunError(f"{p.items} is damaged: a NUL byte in row {damaged}; {redo}")
        if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.floating) \
                or vectors.shape[0] != len(rows):
            raise RunError(f"malformed embeddings in {p.root}: embeddings.npy is {vectors.dtype} "
                           f"{vectors.shape}, items.csv has {len(rows)} rows; {redo}")
        vectors = vectors.astype(np.float32, copy=False)
        # one pass, one float a row: NaN and +-inf carry through a row's sum (unit rows cannot overflow)
        broken = np.flatnonzero(~np.isfinite(vectors.sum(axis=1, dtype=np.float64)))
        if broken.size:
            raise RunError(f"{p.embeddings} holds NaN or infinite values (row {broken[0]}; "
                           f"{broken.size:,} of {len(rows):,} rows); {redo}")
        return Embeddings(*items, vectors)


def _save_npy(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero). (N, D) -> (N, D) float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)
