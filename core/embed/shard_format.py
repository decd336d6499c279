"""The shard format of an embedded archive, below both engines (in-process and Ray).

An archive's output folder OUT holds, for each shard,

    OUT/shard-00000.npy           (N_i, D) float32 unit rows, one per readable file
    OUT/shard-00000.csv           header `path`, then the N_i paths (relative to the archive)
    OUT/shard-00000.skipped.csv   header `path,reason`: unreadable files (only when any)

and `OUT/archive.json` (MANIFEST). The .npy is renamed into place last, so a shard either
exists whole or not at all. Both engines write shards here (`write_shard`); the dispatcher
(`core.embed.shards.embed_archive`) and the index builder read them (`finished_shards`,
`read_archive_paths`). Nothing here imports an engine.
"""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import UserError
from core.files import atomic_write_bytes, atomic_write_csv

MANIFEST = "archive.json"
ARCHIVE_ROOT = "archive_root"  # the manifest's key for the archive folder, resolved
INDEX_FILE = "index.faiss"


class ArchiveError(UserError):
    """The archive or its output folder cannot be used (one-line message)."""


@dataclass(frozen=True)


class ShardInfo:
    """One finished shard: its number, files, and how many rows it holds."""

    number: int
    vectors: Path  # OUT/shard-NNNNN.npy
    paths: Path  # OUT/shard-NNNNN.csv
    n_vectors: int
    n_skipped: int


def shard_stem(out_dir: Path, number: int) -> Path:
    """OUT/shard-NNNNN (zero-padded so names sort in shard order)."""
    return out_dir / f"shard-{number:05d}"


def finished_shards(out_dir: str | Path) -> list[ShardInfo]:
    """The complete shards in `out_dir`, in shard order (a shard without its .npy is not done)."""
    out = Path(out_dir)
    shards = []
    for npy in sorted(out.glob("shard-[0-9][0-9][0-9][0-9][0-9].npy")):
        paths = npy.with_suffix(".csv")
        if not paths.is_file():
            continue
        rows = np.load(npy, mmap_mode="r").shape[0]  # header only
        shards.append(ShardInfo(int(npy.stem.split("-")[1]), npy, paths, rows,
                                len(read_column(skipped_path(npy)))))
    return shards


def read_archive_paths(out_dir: str | Path) -> list[str]:
    """Paths of all shard rows in shard order: entry i is the file behind index id i."""
    paths: list[str] = []
    for shard in finished_shards(out_dir):
        rows = read_column(shard.paths)
        if len(rows) != shard.n_vectors:
            raise ArchiveError(f"{shard.paths} lists {len(rows)} paths for {shard.n_vectors} vectors")
        paths.extend(rows)
    return paths


def write_shard(out: Path, number: int, vectors: np.ndarray, paths: list[str],
                 skipped: list[tuple[str, str]]) -> ShardInfo:
    """Write the csv files first and the .npy last: the .npy marks the shard as finished."""
    stem = shard_stem(out, number)
    npy, csv_path = stem.with_suffix(".npy"), stem.with_suffix(".csv")
    if skipped:
        atomic_write_csv(skipped_path(npy), ["path", "reason"], skipped)
    atomic_write_csv(csv_path, ["path"], [(p,) for p in paths])
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)  # (N_i, D)
    atomic_write_bytes(npy, buf.getvalue())
    return ShardInfo(number, npy, csv_path, len(paths), len(skipped))


def read_column(path: Path, limit: int | None = None) -> list[str]:
    """First column of a shard csv (without its header), its first `limit` rows when given;
    [] when the file is absent."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        rows = (r[0] for r in itertools.islice(csv.reader(f), 1, None) if r)
        return list(itertools.islice(rows, limit))


def skipped_path(npy: Path) -> Path:
    """OUT/shard-NNNNN.skipped.csv beside a shard's .npy."""
    return npy.with_suffix(".skipped.csv")
