"""Thumbnails: size and aspect, the on-disk cache, unreadable files, paths outside the dataset."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from core.data.imageio import ImageReadError
from core.data.thumbnails import dataset_file, placeholder_png, png_thumbnail, thumbnail
from tests import bad_inputs as bi


def _size(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG" and im.mode == "L"
        return im.size


def test_png_thumbnail_fits_and_keeps_aspect():
    assert _size(png_thumbnail(np.zeros((200, 100), np.float32), 96)) == (48, 96)
    assert _size(png_thumbnail(np.ones((10, 20), np.float32), 96)) == (20, 10)  # never enlarged
    assert _size(placeholder_png(32)) == (32, 32)


def test_thumbnail_is_cached_and_renewed_when_the_file_changes(tmp_path):
    data = tmp_path / "data"
    (data / "a").mkdir(parents=True)
    Image.fromarray(np.full((64, 64), 200, np.uint8)).save(data / "a" / "x.png")
    cache = tmp_path / "cache"
    first = thumbnail(data, "a/x.png", cache, size=16)
    cached = list(cache.rglob("*.png"))
    assert len(cached) == 1 and cached[0].read_bytes() == first
    assert thumbnail(data, "a/x.png", cache, size=16) == first
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(data / "a" / "x.png")
    later = cached[0].stat().st_mtime_ns + 10**9
    os.utime(data / "a" / "x.png", ns=(later, later))
    assert thumbnail(data, "a/x.png", cache, size=16) != first
    assert len(list(cache.rglob("*.png"))) == 2


def test_unreadable_and_outside_files_raise_one_line(tmp_path):
    text = bi.text_as_png(tmp_path)
    with pytest.raises(ImageReadError, match="contains text"):
        thumbnail(tmp_path, text.name, None)
    with pytest.raises(ImageReadError, match="outside the dataset folder"):
        dataset_file(tmp_path / "sub", "../x.png")
    with pytest.raises(ImageReadError, match="cannot open"):
        thumbnail(tmp_path, "missing.png")


