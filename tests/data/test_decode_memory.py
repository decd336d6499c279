"""Bounded memory per request (issue 10 case 3): big images decode downscaled, never through
float64 at full size, one big decode at a time; two 64 MP uploads stay under +600 MB."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.data.imageio import MAX_SIDE, load_image, preview


def _png(array: np.ndarray, mode: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format="PNG")
    return buf.getvalue()


def test_a_big_image_decodes_downscaled_keeping_its_size_in_meta():
    a = np.tile(np.arange(256, dtype=np.uint8), (2 * MAX_SIDE + 10, 17))[:, : 2 * MAX_SIDE + 4]
    image = load_image(_png(np.ascontiguousarray(a), "L"), name="big.png")
    h, w = image.pixels.shape
    assert max(h, w) <= MAX_SIDE and image.pixels.dtype == np.float32
    assert image.meta["size"] == f"{a.shape[1]}x{a.shape[0]}"
    assert image.meta["decoded_size"] == f"{w}x{h}"
    assert abs(float(image.pixels.mean()) - float(a.mean()) / 255) < 2e-3  # a box filter


def test_a_big_16_bit_image_is_averaged_in_blocks():
    a = np.zeros((MAX_SIDE + 2, 4), np.uint16)
    a[0::2] = 60_000  # rows alternate: block means are 30,000
    im = Image.fromarray(a)  # mode I;16
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    pixels = load_image(buf.getvalue(), name="x.png").pixels
    assert pixels.shape[0] <= MAX_SIDE
    assert np.allclose(pixels[:-1], 30_000 / 65535, atol=1e-4)


def test_a_big_jpeg_is_decoded_at_a_reduced_scale():
    rgb = np.random.default_rng(0).integers(0, 255, (MAX_SIDE * 2 + 8, 600, 3), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="JPEG")
    image = load_image(buf.getvalue(), name="x.jpg")
    assert max(image.pixels.shape) <= MAX_SIDE


def test_preview_is_screen_sized_uint8():
    shown = preview(np.random.default_rng(0).random((3000, 1500), dtype=np.float32), side=1024)
    assert shown.dtype == np.uint8 and shown.shape == (1024, 512)
    small = np.full((10, 20), 0.5, np.float32)
    assert preview(small).shape == (10, 20)


def test_a_thin_strip_is_padded_to_a_showable_shape():
    row = np.linspace(0, 1, 4000, dtype=np.float32)[None, :]  # 4000 x 1
    shown = preview(row)
    assert shown.shape == (64, 1024)  # 1024 / PREVIEW_MAX_ASPECT rows, the strip in the middle
    assert np.flatnonzero(shown.max(axis=1)).tolist() == [31] and shown[31].max() == 255
    assert preview(row.T).shape == (1024, 64)
    assert preview(np.ones((3, 100), np.float32)).shape == (7, 100)  # small: padded only
    assert preview(np.ones((7, 100), np.float32)).shape == (7, 100)


@pytest.mark.slow
def test_two_64_mp_uploads_at_once_stay_under_600_mb():
    from benchmarks.memory import measure

    result = measure("RGB")
    assert result["growth_mb"] < 600, result
