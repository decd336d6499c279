"""A run's decoded films: one uint8 (N, 1, S, S) .npy per split and decode size, memory-mapped.

Decoding is the slow part of a run's start (about 5 ms a JPEG, 30 s for the 5,284-film
archive on 2 cores), and a resumed run, or a second run on the same films, would pay it
again. The cache is built once and written atomically (temp file, fsync, rename); beside it
a small JSON names what it holds: a key over the decode size and every film's path, size
and modification time, the array's shape and a CRC-32 of its bytes. Anything that does not
match (other films, a film replaced, another size, a cut or damaged file) is rebuilt, never
trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from core.files import TEMP_SUFFIX, atomic_write_json, fsync_dir, read_json
from core.train.views import decode_images

CACHE_DIR = "decoded"
_VERSION = 1  # bump when the decode (core.model.transforms.to_uint8_tensor) changes


def cache_key(paths: Sequence[Path], size: int) -> str:
    """A hash of the decode size and each film's path, byte size and modification time."""
    films = []
    for p in paths:
        try:
            st = os.stat(p)
            films.append([str(p), st.st_size, st.st_mtime_ns])
        except OSError:
            films.append([str(p), -1, -1])  # missing now: a later copy back changes the key
    blob = json.dumps([_VERSION, size, films], separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def decoded_films(folder: Path, name: str, paths: Sequence[Path], size: int,
                  progress: bool = False) -> tuple[torch.Tensor, dict[int, str]]:
    """`decode_images(paths, size)`, read from `folder/decoded/<name>-<size>px.npy` when that
    cache holds exactly these films at this size, else decoded and cached there.

    Args:
        folder: the run folder.
        name: which list this is ("train", "val").
        paths: the films, in order.
        size: the decoded side in pixels.

    Returns:
        images: (N_ok, 1, size, size) uint8, memory-mapped from the cache (copy-on-write).
        bad: {index in `paths`: reason} for files that could not be read.
    """
    array_path = Path(folder) / CACHE_DIR / f"{name}-{size}px.npy"
    meta_path = array_path.with_suffix(".json")
    key = cache_key(paths, size)
    cached = _load(array_path, meta_path, key, size)
    if cached is not None:
        return cached
    images, bad = decode_images(paths, size, progress=progress)
    array = images.numpy()
    _write_npy(array_path, array)
    atomic_write_json(meta_path, {"key": key, "shape": list(array.shape), "crc32": _crc(array),
                                  "bad": {str(i): r for i, r in bad.items()}})
    return images, bad


def _load(array_path: Path, meta_path: Path, key: str, size: int
          ) -> tuple[torch.Tensor, dict[int, str]] | None:
    """The cache when it is whole and holds these films; None otherwise."""
    meta = read_json(meta_path, default=None)
    if not isinstance(meta, dict) or meta.get("key") != key:
        return None
    try:
        array = np.load(array_path, mmap_mode="c")
        bad = {int(i): str(r) for i, r in dict(meta["bad"]).items()}
    except (OSError, ValueError, KeyError, TypeError, EOFError):  # missing, cut, or not .npy
        return None
    if (array.dtype != np.uint8 or array.ndim != 4 or list(array.shape) != meta.get("shape")
            or array.shape[1:] != (1, size, size) or _crc(array) != meta.get("crc32")):
        return None
    return torch.from_numpy(array), bad


def _crc(array: np.ndarray) -> int:
    return zlib.crc32(memoryview(np.ascontiguousarray(array)).cast("B"))


def _write_npy(path: Path, array: np.ndarray) -> None:
    """np.save to a temp file in the same folder, fsync, rename (a kill leaves the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
    try:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
