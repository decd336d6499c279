"""Unpack an uploaded zip of class folders into the workspace, safely.

An upload is untrusted: names may point outside the target (`../x`, `/etc/x`), the sizes in
the headers may lie (a zip bomb), and entries may be symlinks. Names that leave the target
refuse the whole archive; the bytes actually written are counted against the caps; symlinks
and macOS metadata are skipped. The tree is written to a hidden sibling and renamed into
place, so a refused or broken archive leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from core.errors import UserError

MAX_BYTES = 4 * 1024**3  # uncompressed; a chest X-ray dataset of ~20,000 PNGs fits
MAX_FILES = 100_000
MAX_DEPTH = 32  # folders above a file; deeper is no dataset layout (and mkdir recurses per level)
_NAME_MAX, _PATH_MAX = 255, 3800  # bytes: a file system's name limit, a path's with room for dest
_CHUNK = 1 << 20


class UploadError(UserError):
    """The archive cannot be unpacked (one-line message)."""


@dataclass(frozen=True)
class Extracted:
    """What an archive gave: the dataset folder (inside `dest`), counts and skipped names."""

    root: Path
    n_files: int
    n_bytes: int
    skipped: tuple[str, ...] = ()


def dataset_dir_for(datasets_dir: Path, filename: str) -> Path:
    """A new folder under `datasets_dir` named after the upload (`chest.zip` -> `chest`, `chest-2`)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(filename).stem).strip(".-_") or "upload"
    stem = stem[:60]
    candidate, n = datasets_dir / stem, 2
    while candidate.exists():
        candidate, n = datasets_dir / f"{stem}-{n}", n + 1
    return candidate


def _safe_parts(name: str) -> tuple[str, ...]:
    """The entry's path parts, or UploadError when the name would leave the target folder."""
    if "\0" in name:
        raise UploadError(f"archive entry has a NUL byte in its name: {name!r}")
    unified = name.replace("\\", "/")
    if unified.startswith("/") or re.match(r"^[A-Za-z]:", unified):
        raise UploadError(f"archive entry has an absolute path: {name} (refused)")
    parts = tuple(p for p in PurePosixPath(unified).parts if p not in ("", "."))
    if ".." in parts:
        raise UploadError(f"archive entry leaves the folder: {name} (refused)")
    if len(parts) - 1 > MAX_DEPTH:
        raise UploadError(f"archive entry is nested {len(parts) - 1} folders deep (at most "
                          f"{MAX_DEPTH}): {_short(name)} (refused)")
    if any(len(os.fsencode(p)) > _NAME_MAX for p in parts) or len(os.fsencode(unified)) > _PATH_MAX:
        raise UploadError(f"archive entry has a name over {_NAME_MAX} bytes: {_short(name)} (refused)")
    return parts


def _short(name: str) -> str:
    return name if len(name) <= 80 else name[:77] + "…"


def _skip_reason(info: zipfile.ZipInfo, parts: tuple[str, ...]) -> str | None:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symlink"
    if parts and (parts[0].lower() == "__macosx" or parts[-1].startswith(".")):
        return "metadata"
    if info.flag_bits & 0x1:
        raise UploadError(f"archive entry is encrypted: {info.filename} (unpack it yourself)")
    return None


def extract_dataset_zip(source: str | Path | BinaryIO, dest: Path, *, max_bytes: int = MAX_BYTES,
                        max_files: int = MAX_FILES) -> Extracted:
    """Unpack a zip of `<Label>/<image>` folders into `dest` (a folder that must not exist).

    Args:
        source: a path or a binary file object (Streamlit's UploadedFile).
        dest: the new dataset folder, e.g. workspace/datasets/<name>.
        max_bytes, max_files: caps on the uncompressed total and the number of files.

    Returns:
        Extracted, whose `root` is `dest`, or the single folder inside it when the archive
        wraps everything in one top folder (`chest.zip` -> `chest/<Label>/...`).

    Raises:
        UploadError: not a zip, a name leaving `dest`, over a cap, encrypted, or corrupt.
    """
    dest = Path(dest)
    if dest.exists():
        raise UploadError(f"{dest} already exists; choose another name")
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise UploadError(f"not a readable zip file ({e})") from None
    with archive:
        entries, skipped = _plan(archive, max_bytes, max_files)
        dest.parent.mkdir(parents=True, exist_ok=True)
        declared = sum(info.file_size for info, _ in entries)
        if shutil.disk_usage(dest.parent).free < declared + 100 * 1024**2:
            raise UploadError(f"not enough disk space to unpack {_size(declared)}")
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
        try:
            written = _write(archive, entries, tmp, max_bytes)
            tmp.rename(dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return Extracted(_dataset_root(dest), len(entries), written, tuple(skipped))


def _plan(archive: zipfile.ZipFile, max_bytes: int, max_files: int
          ) -> tuple[list[tuple[zipfile.ZipInfo, tuple[str, ...]]], list[str]]:
    """Check every name and the declared sizes before writing anything.

    Returns:
        (entry, path parts) to write, and the names skipped (symlinks, metadata).
    """
    entries, skipped, total = [], [], 0
    files, folders = set(), set()
    for info in archive.infolist():
        parts = _safe_parts(info.filename)
        if info.is_dir() or not parts:
            continue
        if _skip_reason(info, parts):
            skipped.append(info.filename)
            continue
        above = {parts[:n] for n in range(1, len(parts))}
        clash = (files & above) or ({parts} & folders)
        if clash:
            raise UploadError(f"archive entry is both a file and a folder: "
                              f"{_short('/'.join(min(clash)))} (refused)")
        files.add(parts)
        folders |= above
        entries.append((info, parts))
        total += info.file_size
        if len(entries) > max_files:
            raise UploadError(f"archive holds more than {max_files:,} files (refused)")
        if total > max_bytes:
            raise UploadError(f"archive unpacks to more than {_size(max_bytes)} (refused)")
    if not entries:
        raise UploadError("archive holds no files")
    return entries, skipped


def _write(archive: zipfile.ZipFile, entries: list[tuple[zipfile.ZipInfo, tuple[str, ...]]],
           root: Path, max_bytes: int) -> int:
    """Copy the entries under `root`, counting real bytes (headers can understate them)."""
    written = 0
    for info, parts in entries:
        target = root.joinpath(*parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UploadError(f"cannot write {_short(info.filename)}: {e.strerror or e}") from None
        try:
            with archive.open(info) as src, open(target, "xb") as out:
                while chunk := src.read(_CHUNK):
                    written += len(chunk)
                    if written > max_bytes:
                        raise UploadError(f"archive unpacks to more than {_size(max_bytes)} (refused)")
                    out.write(chunk)
        except FileExistsError:
            raise UploadError(f"archive lists {info.filename} twice") from None
        except (zipfile.BadZipFile, EOFError, zlib.error) as e:
            raise UploadError(f"corrupt archive entry {info.filename} ({e})") from None
        except NotImplementedError as e:  # e.g. an unsupported compression method
            raise UploadError(f"cannot unpack {info.filename}: {e}") from None
        except OSError as e:  # a file and a folder of the same name, a name too long, ...
            raise UploadError(f"cannot write {info.filename}: {e.strerror or e}") from None
    return written


def _size(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def _dataset_root(dest: Path) -> Path:
    """`dest`, or its only folder when the archive wrapped everything in one."""
    children = [p for p in dest.iterdir() if not p.name.startswith(".")]
    if len(children) == 1 and children[0].is_dir():
        inner = children[0]
        if any(p.is_dir() for p in inner.iterdir()):
            return inner
    return dest
