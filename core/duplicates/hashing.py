"""Perceptual and exact-pixel hashes: the duplicate signal that owes nothing to the model.

A pHash (Zauner 2010; the `imagehash` package) of the display-ready grayscale image (the
same pixels `core.data.imageio.load_image` gives training and queries) survives resizing,
re-encoding and mild gamma, but not large crops or rotations; the embedding covers those.
An exact digest (SHA-1 of the 8-bit pixels and the shape) flags pixel-identical copies,
whatever the file format or metadata.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

from core.data.imageio import ImageReadError, load_image, to_uint8
from core.files import atomic_write_text

HASH_BITS = 64
_CACHE_FIELDS = ("path", "mtime_ns", "bytes", "phash", "digest", "width", "height")


@dataclass(frozen=True)
class ImageHashes:
    """Hashes of one image: 64-bit pHash, exact-pixel digest and the pixel size."""

    phash: int
    digest: str
    width: int
    height: int


@dataclass(frozen=True)
class HashTable:
    """Hashes of many images, aligned with `paths` (relative to the dataset root).

    Unreadable files get phash 0 and an empty digest, and are listed in `bad`.
    """

    paths: list[str]
    phash: np.ndarray  # (N,) uint64
    digests: list[str]
    width: np.ndarray  # (N,) int64
    height: np.ndarray  # (N,) int64
    bad: dict[int, str]

    def distance(self, i: int, j: int) -> int:
        """Hamming distance between the pHashes of images i and j (64 when either is unreadable)."""
        if i in self.bad or j in self.bad:
            return HASH_BITS
        return hamming(int(self.phash[i]), int(self.phash[j]))

    def exact(self, i: int, j: int) -> bool:
        """True when images i and j have identical pixels."""
        return bool(self.digests[i]) and self.digests[i] == self.digests[j]


def hash_pixels(pixels: np.ndarray) -> ImageHashes:
    """pHash and exact digest of a grayscale image.

    Args:
        pixels: (H, W) float in [0, 1], as `core.data.imageio.load_image` returns.

    Returns:
        ImageHashes for the image.
    """
    grey = to_uint8(pixels)  # (H, W) uint8
    h = imagehash.phash(Image.fromarray(grey, mode="L"))
    bits = np.packbits(np.asarray(h.hash, dtype=bool).ravel())  # (8,) uint8, big-endian
    digest = hashlib.sha1(f"{grey.shape[0]}x{grey.shape[1]}:".encode() + grey.tobytes()).hexdigest()
    return ImageHashes(int.from_bytes(bits.tobytes(), "big"), digest, int(grey.shape[1]),
                       int(grey.shape[0]))


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes."""
    return (int(a) ^ int(b)).bit_count()


def hamming_many(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise Hamming distances.

    Args:
        a, b: (P,) uint64 hashes (broadcastable).

    Returns:
        (P,) int64 distances in [0, 64].
    """
    x = np.bitwise_xor(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64))
    return np.bitwise_count(x).astype(np.int64)


def hash_files(root: str | Path, paths: Sequence[str], cache: str | Path | None = None,
               workers: int = 0) -> HashTable:
    """Hash image files, reusing a CSV cache keyed by (path, mtime, size).

    Args:
        root: dataset root; `paths` are relative to it.
        paths: N relative paths.
        cache: CSV file to read and rewrite (None: no cache).
        workers: threads (0: up to 4; Pillow and zlib release the GIL).

    Returns:
        HashTable aligned with `paths`.
    """
    root = Path(root)
    cached = _read_cache(Path(cache)) if cache else {}
    rows: list[dict[str, str] | None] = [None] * len(paths)
    bad: dict[int, str] = {}

    def work(i: int) -> tuple[int, dict[str, str] | None, str | None]:
        file = root / paths[i]
        try:
            st = file.stat()
        except OSError as e:
            return i, None, f"{paths[i]}: {e.strerror or e}"
        key = (str(st.st_mtime_ns), str(st.st_size))
        row = cached.get(paths[i])
        if row and (row["mtime_ns"], row["bytes"]) == key:
            return i, row, None
        try:
            h = hash_pixels(load_image(file, name=paths[i]).pixels)
        except ImageReadError as e:
            return i, None, str(e)
        return i, {"path": paths[i], "mtime_ns": key[0], "bytes": key[1], "phash": f"{h.phash:016x}",
                   "digest": h.digest, "width": str(h.width), "height": str(h.height)}, None

    with ThreadPoolExecutor(workers or min(4, os.cpu_count() or 1)) as pool:
        for i, row, err in pool.map(work, range(len(paths))):
            rows[i] = row
            if err:
                bad[i] = err
    if cache:
        _write_cache(Path(cache), [r for r in rows if r is not None])
    ok = [r or {"phash": "0", "digest": "", "width": "0", "height": "0"} for r in rows]
    return HashTable(list(paths), np.array([int(r["phash"], 16) for r in ok], dtype=np.uint64),
                     [r["digest"] for r in ok], np.array([int(r["width"]) for r in ok], np.int64),
                     np.array([int(r["height"]) for r in ok], np.int64), bad)


def near_hash_pairs(phash: np.ndarray, max_distance: int, valid: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs with pHash distance <= max_distance, without comparing every pair.

    Pigeonhole: split the 64 bits into max_distance + 1 chunks; two hashes within
    max_distance bits agree exactly on at least one chunk, so only images sharing a chunk
    value are compared (multi-index hashing, Norouzi et al. 2012).

    Args:
        phash: (N,) uint64 hashes.
        max_distance: 0..16 (larger makes chunks too short to prune anything).
        valid: (N,) bool, False for images to leave out (unreadable); None keeps all.

    Returns:
        i, j, d: (P,) int64 arrays, i < j, sorted by (i, j).
    """
    if not 0 <= max_distance <= 16:
        raise ValueError(f"max_distance must be in 0..16, got {max_distance}")
    h = np.asarray(phash, dtype=np.uint64)
    n = h.shape[0]
    keep = np.arange(n) if valid is None else np.flatnonzero(valid)
    bounds = np.linspace(0, HASH_BITS, max_distance + 2).round().astype(int)
    codes: list[np.ndarray] = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        chunk = (h[keep] >> np.uint64(lo)) & np.uint64((1 << (hi - lo)) - 1)  # (K,)
        order = np.argsort(chunk, kind="stable")
        starts = np.flatnonzero(np.r_[True, chunk[order][1:] != chunk[order][:-1]])
        ends = np.r_[starts[1:], len(order)]
        for s, e in zip(starts, ends, strict=True):
            if e - s < 2:
                continue
            members = np.sort(keep[order[s:e]])  # (M,)
            codes.extend(_close_pairs(h, members, max_distance, n))
    if not codes:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    code = np.unique(np.concatenate(codes))
    i, j = code // n, code % n
    return i, j, hamming_many(h[i], h[j])


def _close_pairs(h: np.ndarray, members: np.ndarray, max_distance: int, n: int,
                 block: int = 1024) -> list[np.ndarray]:
    """Codes i * n + j of pairs within a bucket that are close enough, in row blocks."""
    out = []
    for s in range(0, len(members), block):
        rows = members[s:s + block]  # (B,)
        d = hamming_many(h[rows][:, None], h[members][None, :])  # (B, M)
        r, c = np.nonzero((d <= max_distance) & (rows[:, None] < members[None, :]))
        if len(r):
            out.append(rows[r] * n + members[c])
    return out


def _read_cache(path: Path) -> dict[str, dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != _CACHE_FIELDS:
                return {}
            return {r["path"]: r for r in reader}
    except (OSError, csv.Error, UnicodeDecodeError):
        return {}


def _write_cache(path: Path, rows: list[dict[str, str]]) -> None:
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=_CACHE_FIELDS)
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, text.getvalue())
