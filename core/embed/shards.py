"""Embed a large image archive into shards on disk, resumably: the dispatcher of both engines.

An archive is any folder of images (nested folders, no labels needed). Its files are listed
by the one listing of a folder (`list_archive`, through `core.data.dataset`) in sorted order
and embedded `shard_size` at a time, by this process or on Ray (`core.embed.ray_engine`);
both write the shard format of `core.embed.shard_format` (one .npy, its .csv of paths and a
.skipped.csv a shard). As in a dataset, laterals and non-radiograph DICOM films are left out
unless `--views all` (OUT/left_out.csv names each with its reason), and DICOM headers are
cached in OUT/dicom-headers.csv, so a resume does not parse the tree again. `OUT/archive.json`
records the model (checkpoint hash) and image size the shards were made with, and the archive
folder they came from (`archive_root`, resolved); a second call with another model or another
archive is refused rather than mixing two embeddings or two archives in one index
(`check_archive_root`, which `archive-duplicates` asks too).

Resuming: a call embeds only the files no finished shard holds, in the same sorted order, so
an interrupted run resumes with exactly the shard boundaries an uninterrupted run would have
had, and files added to the archive later go into new shards at the end. A gap (Ray's actors
finish shards out of order, so a lost run may leave shards 0, 1 and 3 but not 2) is filled with
the files an uninterrupted run would have put there (`_plan`). Files deleted from
the archive keep their rows (rebuild into a fresh OUT to drop them).

Memory is one shard of vectors plus the model; `build_index_from_shards` memory-maps the
shards (see `VectorIndex.build_from_shards`).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from core.config import VIEWS
from core.data.dataset import (
    FILE_REASONS,
    HEADER_CACHE,
    OUTSIDE,
    VIEW_REASONS,
    ListingOptions,
    list_archive_folder,
    no_image_files,
    walk_images,
)
from core.device import setup_cpu
from core.embed.encoder import Encoder, embed_dataset
from core.embed.shard_format import (
    ARCHIVE_ROOT,
    MANIFEST,
    ArchiveError,
    ShardInfo,
    finished_shards,
    read_column,
    skipped_path,
    write_shard,
)
from core.files import atomic_write_csv, atomic_write_json, read_json
from core.run_folder import RunPaths

ARCHIVE_FORMAT = 1
ENGINES = ("local", "ray")
LEFT_OUT = "left_out.csv"  # OUT's list of files the views rule left out, with the reason


@dataclass(frozen=True)
class ArchiveResult:
    """What `embed_archive` did; counts cover the whole output folder unless named `new`."""

    out_dir: Path
    n_files: int  # image files found in the archive now
    n_vectors: int  # rows in all shards
    n_skipped: int  # unreadable files recorded in all shards
    n_shards: int
    new_shards: tuple[int, ...]  # shard numbers written by this call
    seconds: float
    left_out: tuple[tuple[str, str], ...] = ()  # (path, reason): other views, not embedded


@dataclass(frozen=True)
class ArchiveListing:
    """An archive's files to embed (sorted POSIX paths relative to it) and the files the views
    rule leaves out, each with its reason (e.g. 'lateral view (ViewPosition LL)')."""

    files: list[str]
    left_out: list[tuple[str, str]]


def archive_listing(data_dir: str | Path, *, views: str = "frontal",
                    header_cache: Path | None = None) -> ArchiveListing:
    """The archive's files, by the folder's one listing (`core.data.dataset.list_archive_folder`,
    walking the whole folder even where a manifest.csv lists a dataset in it).

    Hidden files and folders, mask folders and symlinks leading outside are left out;
    unreadable and empty files stay in, so the shards record them as skipped. Labels play no
    part. As for a dataset, laterals and non-radiograph DICOM films are left out (listed with
    the reason) unless `views` is 'all'; DICOM headers are read once through `header_cache`.

    Raises:
        ArchiveError: the folder is missing or unreadable, or `views` is unknown.
    """
    root = _archive_folder(data_dir)
    if views not in VIEWS:
        raise ArchiveError(f"unknown --views '{views}' (choose from {', '.join(VIEWS)})")
    listing = list_archive_folder(root, ListingOptions("none", views, header_cache))
    files = sorted([s.path for s in listing.samples]
                   + [s.path for s in listing.skipped if s.reason in FILE_REASONS and s.reason != OUTSIDE])
    left_out = sorted((s.path, s.reason) for s in listing.skipped if s.reason.startswith(VIEW_REASONS))
    return ArchiveListing(files, left_out)


def list_archive(data_dir: str | Path, *, views: str = "frontal",
                 header_cache: Path | None = None) -> list[str]:
    """The files `archive_listing` would embed (sorted POSIX paths relative to `data_dir`)."""
    return archive_listing(data_dir, views=views, header_cache=header_cache).files


def _archive_folder(data_dir: str | Path) -> Path:
    """`data_dir` resolved, once it is a readable folder (ArchiveError otherwise)."""
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise ArchiveError(f"archive folder not found: {root}")
    if not os.access(root, os.R_OK | os.X_OK):
        raise ArchiveError(f"archive folder is not readable: {root}")
    return root.resolve()


def check_archive_root(out_dir: str | Path, data_dir: str | Path) -> Path:
    """The archive folder `data_dir` (resolved), refused unless it can be the one `out_dir`'s
    shards came from.

    An output folder records its archive (`archive_root` in archive.json); one written before
    that was recorded is checked against the files its shards name (one per shard).

    Args:
        out_dir: an `embed-archive` output folder (it may not exist yet).
        data_dir: the archive folder given with it.

    Returns:
        The resolved archive folder.

    Raises:
        ArchiveError: the folder is missing or unreadable, holds no image file, or `out_dir`
            was made from another archive.
    """
    root = _archive_folder(data_dir)
    if next((rel for rel, is_file in walk_images(root) if is_file), None) is None:  # stops at the first
        raise ArchiveError(no_image_files(root))
    out = Path(out_dir).expanduser()
    recorded = _read_manifest(out).get(ARCHIVE_ROOT)
    if recorded is not None:
        if Path(str(recorded)) != root:
            raise ArchiveError(f"{out} was made from the archive {recorded}, not {root}; pass "
                               "that folder as --data, or choose a new output folder")
    elif not _holds_shard_files(out, root):
        raise ArchiveError(f"{out} holds shards of another archive: none of the files they name "
                           f"is in {root}; choose a new output folder")
    return root


def _holds_shard_files(out: Path, root: Path) -> bool:
    """True when `out` has no shards, or `root` holds the first file of one of them."""
    shards = finished_shards(out)
    for shard in shards:
        first = read_column(shard.paths, 1) or read_column(skipped_path(shard.vectors), 1)
        if first and (root / first[0]).is_file():
            return True
    return not shards


def embed_archive(run_dir: str | Path, data_dir: str | Path, out_dir: str | Path,
                  shard_size: int = 10_000, *, device: str = "auto", precision: str = "auto",
                  batch_size: int = 64, workers: int = -1, progress: bool = False,
                  on_shard: Callable[[ShardInfo], None] | None = None, engine: str = "local",
                  address: str | None = None, gpus_per_worker: float = 0.0,
                  stall_timeout: float | None = None, views: str | None = None) -> ArchiveResult:
    """Embed every archive file not yet in a finished shard, one shard at a time.

    Args:
        run_dir: a trained run (its best checkpoint and image size are used).
        data_dir: the archive folder.
        out_dir: where shards go; created if missing.
        shard_size: files per shard (>= 1).
        device, precision: as for training ("auto" picks cuda / bf16 where available).
        batch_size, workers: passed to `embed_dataset`.
        progress: show a progress bar per shard.
        on_shard: called after each shard is written (e.g. to report progress).
        engine: 'local' (this process) or 'ray' (Ray Data, `core.embed.ray_engine`); both
            write the same shards with the same vectors, and either resumes the other's.
        address: Ray cluster ('auto' or HOST:PORT); None starts a local Ray (engine 'ray').
        gpus_per_worker: GPUs per embedding actor (engine 'ray'; 0 embeds on CPUs).
        stall_timeout: seconds without a row from Ray before the run stops, in one line,
            keeping its finished shards (engine 'ray'; None: the engine's default, 300).
        views: 'frontal' leaves laterals and non-radiograph DICOM films out (listed in
            `ArchiveResult.left_out` and OUT/left_out.csv), 'all' embeds them; None: the run's.

    Returns:
        ArchiveResult for the whole output folder.

    Raises:
        ArchiveError: bad folders or settings, or shards made with another model.
        RunError: `run_dir` has no usable checkpoint.
    """
    if shard_size < 1:
        raise ArchiveError(f"shard size must be >= 1, got {shard_size}")
    if engine not in ENGINES:
        raise ArchiveError(f"unknown engine {engine!r}; choose {' or '.join(ENGINES)}")
    if address is not None and engine != "ray":
        raise ArchiveError("a Ray --address needs --engine ray")
    started = time.time()
    setup_cpu()
    out = Path(out_dir).expanduser()
    root = check_archive_root(out, data_dir)  # before anything is loaded or written
    if views is not None and views not in VIEWS:
        raise ArchiveError(f"unknown --views '{views}' (choose from {', '.join(VIEWS)})")
    out.mkdir(parents=True, exist_ok=True)
    encoder = Encoder.from_run(run_dir, device, precision, batch_size, which="best")
    size = encoder.image_size
    _check_manifest(out, _run_identity(run_dir, size, encoder.config.model.feature_dim), root)
    listing = archive_listing(root, views=views or encoder.config.views,
                              header_cache=out / HEADER_CACHE)  # headers read once per archive
    files = listing.files
    atomic_write_csv(out / LEFT_OUT, ("path", "reason"), listing.left_out)
    held = {s.number: read_column(s.paths) + read_column(skipped_path(s.vectors))
            for s in finished_shards(out)}
    seen = {p for paths in held.values() for p in paths}
    plan = _plan(held, [p for p in files if p not in seen], shard_size)
    if engine == "ray":
        from core.embed.ray_engine import RaySettings, embed_shards_on_ray

        settings = RaySettings(address, gpus_per_worker, batch_size=batch_size)
        if stall_timeout is not None:
            if not stall_timeout > 0:
                raise ArchiveError(f"stall timeout must be > 0 seconds, got {stall_timeout}")
            settings = replace(settings, stall_timeout=float(stall_timeout))
        new = embed_shards_on_ray(encoder.model, size, precision, root, out, plan, settings,
                                  on_shard, model_config=encoder.config.model)
        return _result(out, len(files), new, started, listing.left_out)
    new: list[int] = []
    for number, chunk in plan:
        vectors, bad = embed_dataset(encoder, [root / p for p in chunk], workers=workers,
                                     progress=progress)
        info = write_shard(out, number, vectors, [p for i, p in enumerate(chunk) if i not in bad],
                            [(chunk[i], bad[i]) for i in sorted(bad)])
        new.append(number)
        if on_shard is not None:
            on_shard(info)
    return _result(out, len(files), new, started, listing.left_out)


def _plan(held: dict[int, list[str]], todo: list[str],
          shard_size: int) -> list[tuple[int, list[str]]]:
    """(shard number, files) to embed, in shard order: the gaps first, then new shards.

    `held` maps each finished shard to its files (rows and skipped), `todo` is the sorted
    files no shard holds. A gap (a number below the last finished shard, not finished: Ray's
    actors finish shards out of order, so a lost run can leave one) gets the files an
    uninterrupted run would have put there (`_gap_chunks`); the rest go into new shards after
    the last one, `shard_size` at a time.
    """
    gaps = _gap_chunks(held, todo, shard_size) or {}
    used = {p for paths in gaps.values() for p in paths}
    rest = [p for p in todo if p not in used]
    number = max(held) + 1 if held else 0
    return sorted(gaps.items()) + [(number + i, rest[start:start + shard_size])
                                   for i, start in enumerate(range(0, len(rest), shard_size))]


def _gap_chunks(held: dict[int, list[str]], todo: list[str],
                shard_size: int) -> dict[int, list[str]] | None:
    """The files of each gap, when the finished shards are chunks of one sorted file list.

    That holds when every finished shard but the last is full (`shard_size` files) and each
    one's files sort after the previous one's; a run of missing numbers then gets the
    unembedded files sorted between its neighbours, which must be exactly `shard_size` a gap
    (else files were added there or the shard size changed: None, and every file left goes
    into new shards at the end, as before).
    """
    if not held:
        return {}
    numbers, last = sorted(held), max(held)
    if any(not held[n] for n in numbers) or any(len(held[n]) != shard_size for n in numbers[:-1]):
        return None
    low = {n: min(held[n]) for n in numbers}
    high = {n: max(held[n]) for n in numbers}
    if any(high[a] >= low[b] for a, b in zip(numbers, numbers[1:], strict=False)):
        return None
    gaps: dict[int, list[str]] = {}
    number = 0
    while number < last:
        if number in held:
            number += 1
            continue
        end = number
        while end + 1 not in held:
            end += 1  # the gap runs from `number` to `end`; `end + 1` <= last is finished
        below = high.get(number - 1)
        between = [p for p in todo if (below is None or p > below) and p < low[end + 1]]
        if len(between) != (end - number + 1) * shard_size:
            return None
        for i, start in enumerate(range(0, len(between), shard_size)):
            gaps[number + i] = between[start:start + shard_size]
        number = end + 1
    return gaps


def _result(out: Path, n_files: int, new: list[int], started: float,
            left_out: list[tuple[str, str]]) -> ArchiveResult:
    shards = finished_shards(out)
    return ArchiveResult(out, n_files, sum(s.n_vectors for s in shards),
                         sum(s.n_skipped for s in shards), len(shards), tuple(new),
                         time.time() - started, tuple(left_out))


def _run_identity(run_dir: str | Path, image_size: int, dim: int) -> dict:
    paths = RunPaths(Path(run_dir))
    checkpoint = paths.best if paths.best.is_file() else paths.last
    digest = hashlib.sha256()
    with checkpoint.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"format": ARCHIVE_FORMAT, "checkpoint_sha256": digest.hexdigest(),
            "image_size": image_size, "dim": dim}


def _read_manifest(out: Path) -> dict:
    """OUT/archive.json ({} when absent); ArchiveError when it holds something else than an object."""
    path = out / MANIFEST
    stored = read_json(path)
    if stored is not None and not isinstance(stored, dict):
        raise ArchiveError(f"{path} is damaged (not a JSON object); choose a new output folder")
    return stored or {}


def _check_manifest(out: Path, identity: dict, root: Path) -> None:
    """Record the model and the archive on first use; refuse a folder whose shards came from
    another model. The archive was checked by `check_archive_root`; a folder written before
    the archive was recorded gets it now."""
    path = out / MANIFEST
    stored = read_json(path)
    if stored is None:
        if finished_shards(out):
            raise ArchiveError(f"{out} holds shards but no {MANIFEST}; choose an empty folder")
        atomic_write_json(path, identity | {ARCHIVE_ROOT: str(root)})
        return
    if {k: stored.get(k) for k in identity} != identity:
        raise ArchiveError(f"{out} holds shards made with another model or image size; "
                           "choose a new output folder")
    if stored.get(ARCHIVE_ROOT) is None:
        atomic_write_json(path, stored | {ARCHIVE_ROOT: str(root)})


__all__ = ["ArchiveListing", "ArchiveResult", "archive_listing", "check_archive_root", "embed_archive",
           "list_archive"]
