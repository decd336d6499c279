"""The decoded-film cache: built once, memory-mapped, and rebuilt whenever it does not match."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import core.train.decoded_cache as dc
from core.train.views import decode_images


@pytest.fixture
def films(tmp_path: Path) -> list[Path]:
    out = []
    for i in range(5):
        p = tmp_path / "data" / f"film{i}.png"
        p.parent.mkdir(exist_ok=True)
        Image.fromarray(np.full((40, 40), 30 * i + 10, dtype=np.uint8)).save(p)
        out.append(p)
    (tmp_path / "data" / "broken.png").write_bytes(b"not an image")
    return [*out, tmp_path / "data" / "broken.png"]


@pytest.fixture
def decodes(monkeypatch) -> list[int]:
    calls: list[int] = []

    def counting(paths, size, **kwargs):
        calls.append(len(paths))
        return decode_images(paths, size, **kwargs)

    monkeypatch.setattr(dc, "decode_images", counting)
    return calls


def test_built_once_then_read_memory_mapped(tmp_path, films, decodes):
    images, bad = dc.decoded_films(tmp_path / "run", "train", films, 24)
    again, bad_again = dc.decoded_films(tmp_path / "run", "train", films, 24)
    assert decodes == [6]  # the second call decoded nothing
    assert images.shape == (5, 1, 24, 24) and images.dtype == torch.uint8
    assert torch.equal(images, again) and torch.equal(again, decode_images(films, 24)[0])
    assert list(bad) == list(bad_again) == [5] and "broken.png" in bad_again[5]
    maps = Path("/proc/self/maps")
    if maps.exists():  # Linux: the cache file is mapped, not read into a copy
        assert str(tmp_path / "run" / dc.CACHE_DIR / "train-24px.npy") in maps.read_text()
    assert not list((tmp_path / "run").rglob("*.tmp"))


def test_other_films_or_size_rebuild(tmp_path, films, decodes):
    run = tmp_path / "run"
    dc.decoded_films(run, "train", films, 24)
    dc.decoded_films(run, "train", films[:3], 24)  # another film list
    dc.decoded_films(run, "train", films[:3], 32)  # another size
    assert decodes == [6, 3, 3]
    Image.fromarray(np.full((40, 40), 250, dtype=np.uint8)).save(films[0])  # a film replaced
    st = os.stat(films[0])
    os.utime(films[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    images, _ = dc.decoded_films(run, "train", films[:3], 32)
    assert decodes == [6, 3, 3, 3] and int(images[0].float().mean()) > 240


@pytest.mark.parametrize("damage", ["cut", "flipped", "meta_junk", "meta_missing", "array_missing"])
def test_a_damaged_cache_is_rebuilt_not_trusted(tmp_path, films, decodes, damage):
    run = tmp_path / "run"
    truth, _ = dc.decoded_films(run, "train", films, 24)
    truth = truth.clone()
    array = run / dc.CACHE_DIR / "train-24px.npy"
    meta = array.with_suffix(".json")
    if damage == "cut":
        array.write_bytes(array.read_bytes()[:-100])
    elif damage == "flipped":
        data = bytearray(array.read_bytes())
        data[-7] ^= 0xFF
        array.write_bytes(bytes(data))
    elif damage == "meta_junk":
        meta.write_text("{not json")
    elif damage == "meta_missing":
        meta.unlink()
    else:
        array.unlink()
    images, bad = dc.decoded_films(run, "train", films, 24)
    assert decodes == [6, 6]
    assert torch.equal(images, truth) and list(bad) == [5]
    again, _ = dc.decoded_films(run, "train", films, 24)
    assert decodes == [6, 6] and torch.equal(again, truth)  # and the rebuilt cache is used
