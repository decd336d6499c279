"""Small PNG previews of dataset images, cached on disk, for grids and hover panels.

A thumbnail is the image as the model sees it (`load_image` pixels, so DICOM windowed),
scaled to fit `size` pixels. The cache key holds the path, size and mtime of the source, so
an edited file gets a new thumbnail; entries are written atomically.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

from core.data.access import dataset_file
from core.data.imageio import ImageReadError, load_image, to_uint8
from core.files import atomic_write_bytes

THUMB_SIZE = 96
CACHE_DIR = "thumbnails"


def png_thumbnail(pixels: np.ndarray, size: int = THUMB_SIZE) -> bytes:
    """Encode an image as a PNG that fits in size x size (aspect ratio kept).

    Args:
        pixels: (H, W) float in [0, 1].
        size: longest side in pixels.

    Returns:
        PNG bytes of an 8-bit grayscale image.
    """
    im = Image.fromarray(to_uint8(pixels), mode="L")
    im.thumbnail((size, size), Image.Resampling.LANCZOS)  # keeps the aspect ratio
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def placeholder_png(size: int = THUMB_SIZE) -> bytes:
    """A mid-grey square shown in place of an unreadable image."""
    return png_thumbnail(np.full((size, size), 0.5, np.float32), size)


def thumbnail(data_root: str | Path, rel_path: str, cache_dir: str | Path | None = None,
              size: int = THUMB_SIZE, roots: tuple[Path, ...] = ()) -> bytes:
    """PNG thumbnail of a dataset image, from the cache when current.

    Args:
        data_root: the dataset folder.
        rel_path: the image's path as in the run's items.csv (relative to it, or absolute).
        cache_dir: folder for cached thumbnails (e.g. `<run>/thumbnails`); None: no cache.
        size: longest side in pixels.
        roots: the allowed roots an absolute path may lie in (`core.data.access.dataset_file`).

    Returns:
        PNG bytes.

    Raises:
        ImageReadError: the image is missing, unreadable or outside those folders (one line).
    """
    path = dataset_file(data_root, rel_path, roots)
    try:
        stat = path.stat()
    except OSError as e:
        raise ImageReadError(rel_path, f"cannot open file ({e.strerror or e})") from None
    cached: Path | None = None
    if cache_dir is not None:
        key = hashlib.sha1(f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{size}".encode()).hexdigest()
        cached = Path(cache_dir) / key[:2] / f"{key}.png"
        try:
            return cached.read_bytes()
        except OSError:
            pass
    data = png_thumbnail(load_image(path, name=rel_path).pixels, size)
    if cached is not None:
        try:
            atomic_write_bytes(cached, data)
        except OSError:  # a read-only run folder still shows thumbnails
            pass
    return data

