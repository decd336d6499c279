"""Pixel checks before any model: a colour photo, a strip and a blank image are not radiographs."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from core.data.imageio import load_image
from core.data.plausibility import COLOUR_LIMIT, colourfulness, radiograph_check
from tests import bad_inputs as bi


def test_colour_photo_is_flagged_as_colour(tmp_path):
    path = bi.colour_photo(tmp_path)
    check = radiograph_check(load_image(path).pixels, path.read_bytes())
    assert not check.plausible
    assert check.colourfulness > COLOUR_LIMIT
    assert any(p.startswith("it is in colour") for p in check.problems)


def test_grey_film_saved_as_rgb_jpeg_is_plausible(tmp_path):
    rng = np.random.default_rng(0)
    grey = (np.linspace(0, 255, 256)[None, :] * np.ones((256, 1)) + rng.normal(0, 8, (256, 256)))
    grey = np.clip(grey, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.stack([grey] * 3, -1), "RGB").save(buf, "JPEG", quality=85)
    check = radiograph_check(load_image(buf.getvalue()).pixels, buf.getvalue())
    assert check.plausible, check.problems
    assert colourfulness(buf.getvalue()) < 0.02


def test_shape_and_grey_range_by_hand():
    strip = np.tile(np.linspace(0, 1, 300, dtype=np.float32), (100, 1))  # 300 x 100: aspect 3
    assert [p.split(" (")[0] for p in radiograph_check(strip).problems] == ["its shape is 300 x 100 px"]
    # decoded downscaled: the file's own shape is the one named and judged
    assert radiograph_check(strip, size=(3000, 1000)).problems[0].startswith("its shape is 3000 x 1000 px")
    assert radiograph_check(np.ones((100, 300), np.float32) * np.linspace(0, 1, 300),
                            size=(300, 300)).plausible
    flat = np.full((200, 200), 0.5, np.float32)
    check = radiograph_check(flat)
    assert check.grey_spread == 0.0 and check.problems[0].startswith("it has almost no grey range")
    assert colourfulness(b"not an image") == 0.0
