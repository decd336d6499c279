"""Files written so that a crash never leaves half of one: write a temp file, fsync, rename.

One reader and one writer per plain format (bytes, JSON, JSON lines, CSV) for the whole of core.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import hashlib
import io
import json
import math
import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

TEMP_SUFFIX = ".tmp"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        _name_the_file(e, path)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path, default: Any = None) -> Any:
    """The JSON in `path`, or `default` when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def append_jsonl(path: Path, obj: dict[str, Any]) -> None:
    """Append one row; NaN and infinite values become null, so every line stays valid JSON."""
    clean = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in obj.items()}
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(clean, sort_keys=True, allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Replace a JSON-lines file atomically (e.g. to drop rows a crash left behind)."""
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; a torn last line (crash mid-write) is ignored."""
    rows = []
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    except OSError:
        pass
    return rows


def fsync_dir(folder: Path) -> None:
    """Make the renames inside `folder` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_path(path: Path) -> Path:
    """A fresh temp name beside `path` that `remove_temps` recognises ('.<name>.<random>.tmp')."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    os.close(fd)
    return tmp


def _create_temp(path: Path) -> tuple[int, Path]:
    """Create '.<name>.<random>.tmp' beside `path`, open for writing, with the mode a plain
    open() gives (0666 & ~umask). `tempfile.mkstemp` makes 0600 files: renamed into place,
    they kept another user of the same group (the app beside the CLI) out of the run."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
        try:
            return os.open(tmp, flags, 0o666), tmp  # the kernel applies the umask
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temp file name", str(path))


def atomic_write_with(path: Path, write: Callable[[Path], None]) -> None:
    """Let `write(tmp)` fill a temp file (for writers that want a file name, as FAISS does),
    then fsync it and rename it over `path`."""
    tmp = temp_path(path)
    try:
        write(tmp)
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        _name_the_file(e, path)
        raise
    fsync_dir(path.parent)


def _name_the_file(e: BaseException, path: Path) -> None:
    """Give an OSError that names no file (a full disk met inside a writer such as torch.save)
    the file being written, so its one line says where: 'the disk is full: runs/r1/last.pt'."""
    if isinstance(e, OSError) and not e.filename:
        e.filename = str(path)


def remove_temps(folder: Path) -> list[Path]:
    """Delete temp files a killed writer left in `folder` (and its subfolders).

    Call it only while holding the folder's lock (no live writer). Returns what was removed.
    """
    removed = []
    for p in Path(folder).rglob(f"*{TEMP_SUFFIX}"):  # '.x.abc.tmp', and 'x.tmp' of older writers
        try:
            if p.is_file():
                p.unlink()
            removed.append(p)
        except OSError:
            continue
    return removed


def try_lock(lock: Path, wait: float = 0.0) -> int | None:
    """An open fd holding an exclusive `flock` on `lock`, or None when someone else holds it.

    The lock belongs to the open file: a child process handed the fd (`pass_fds`) keeps it,
    and the kernel drops it when the last holder exits, kill -9 included.

    Args:
        lock: the lock file (created if missing).
        wait: seconds to keep trying (a `lock_held` look holds it for microseconds).
    """
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)  # umask applies, as for every file
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.02)


def lock_held(lock: Path) -> bool:
    """True while some process holds `lock` (liveness without a pid that can be recycled)."""
    if not lock.is_file():
        return False
    fd = try_lock(lock)
    if fd is None:
        return True
    os.close(fd)
    return False


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> bytes:
    """The one CSV writer: UTF-8, a header line, Unix line endings (the same bytes everywhere).

    Args:
        header: column names.
        rows: sequences in header order, or mappings by column name (other keys are ignored).
    """
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow([row.get(k, "") for k in header] if isinstance(row, Mapping) else row)
    return buf.getvalue().encode("utf-8")


def atomic_write_csv(path: Path, header: Sequence[str],
                     rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> None:
    """`csv_bytes` written atomically (temp file, fsync, rename)."""
    atomic_write_bytes(path, csv_bytes(header, rows))


def file_stamp(path: Path) -> float:
    """A file's mtime, 0.0 when it is missing: part of a cache key, so a rewritten file (a
    new artifact generation, a new duplicate search) is read again."""
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return 0.0


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks (a checkpoint's identity)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
