"""The pages' decoded images (Search uploads and dataset picks, the Duplicates pair) are kept
in one pool bounded in bytes (issue 28 item 8): Streamlit's caches of 8, 32 and 16 entries
kept that many images whatever their size."""

from __future__ import annotations

import inspect
import io
import tracemalloc

import numpy as np
import pytest
from PIL import Image

SIDE = 512  # one decoded image: 1 MiB of float32 pixels
ONE = SIDE * SIDE * 4


def _png(seed: int) -> bytes:
    a = np.random.default_rng(seed).integers(0, 256, (SIDE, SIDE), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a, "L").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


@pytest.fixture
def small_pool(monkeypatch):
    from core.data.image_cache import IMAGE_CACHE

    monkeypatch.setattr(IMAGE_CACHE, "max_bytes", int(4.5 * ONE))
    IMAGE_CACHE.clear()
    yield IMAGE_CACHE
    IMAGE_CACHE.clear()


def test_uploads_picks_and_pairs_share_one_pool_bounded_in_bytes(small_pool, tmp_path):
    from pages._duplicates_ui import _image
    from pages._search_ui import QueryImage, _read_dataset, _read_upload

    # the films' allowed roots (issue 28 item 4), when the loaders take them
    roots = ((),) if "roots" in inspect.signature(_image).parameters else ()
    uploads = [_png(i) for i in range(6)]
    for i in range(6):
        (tmp_path / f"{i}.png").write_bytes(_png(100 + i))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i, data in enumerate(uploads):
            assert isinstance(_read_upload(data, f"u{i}.png"), QueryImage)
            assert isinstance(_read_dataset(str(tmp_path), f"{i}.png", 1.0, *roots), QueryImage)
            _image(str(tmp_path), f"{i}.png", 1.0, *roots)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # 18 decoded images went through; the pool keeps 4 of them (Streamlit's caches kept all 18)
    assert held < small_pool.max_bytes + ONE, f"{held / ONE:.1f} images held"
    assert small_pool.bytes_held <= small_pool.max_bytes and len(small_pool) == 4
    last = _image(str(tmp_path), "5.png", 1.0, *roots)
    assert _image(str(tmp_path), "5.png", 1.0, *roots) is last  # a hit: kept, not decoded again
