"""The pages' decoded-image pool is bounded in bytes (issue 28 item 8), not in entries."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pytest

from core.data.image_cache import IMAGE_CACHE, IMAGE_CACHE_BYTES, ByteBoundedCache, nbytes

MB = 2**20


@dataclass(frozen=True)
class _Decoded:
    pixels: np.ndarray
    raw: np.ndarray | None
    meta: dict[str, str]


def test_nbytes_counts_arrays_through_dataclasses_and_containers_once():
    a = np.zeros((100, 100), np.float32)
    value = _Decoded(a, a, {"size": "100x100"})  # raw is pixels: counted once
    assert 40_000 <= nbytes(value) < 41_000
    assert nbytes((value, [np.zeros(10, np.uint8)], b"x" * 1000)) > 41_000
    assert nbytes("error: a.dcm: refused") < 200


def test_the_least_recently_used_go_first_and_the_bound_holds():
    cache = ByteBoundedCache(3 * MB + 1000)
    image = lambda: np.zeros(MB, np.uint8)  # noqa: E731
    for key in "abc":
        cache.get_or_compute(key, image)
    assert len(cache) == 3
    cache.get_or_compute("a", lambda: pytest.fail("a is kept"))  # a is now the most recent
    cache.get_or_compute("d", image)
    assert len(cache) == 3 and cache.bytes_held <= cache.max_bytes
    cache.get_or_compute("a", lambda: pytest.fail("a is kept"))
    assert cache.get_or_compute("b", lambda: "recomputed") == "recomputed"  # b went first


def test_a_value_bigger_than_the_pool_is_returned_but_not_kept():
    cache = ByteBoundedCache(MB)
    big = cache.get_or_compute("big", lambda: np.zeros(2 * MB, np.uint8))
    assert big.nbytes == 2 * MB and len(cache) == 0 and cache.bytes_held == 0


def test_an_exception_is_raised_and_nothing_is_kept():
    cache = ByteBoundedCache(MB)

    def fail():
        raise ValueError("no")

    with pytest.raises(ValueError):
        cache.get_or_compute("k", fail)
    assert len(cache) == 0


def test_memoize_keys_on_arguments_and_bytes_by_digest():
    cache = ByteBoundedCache(16 * MB)
    calls: list[tuple[int, str]] = []
    busy_entered: list[bool] = []

    @contextmanager
    def busy():
        busy_entered.append(True)
        yield

    @cache.memoize(busy=busy)
    def decode(data: bytes, name: str) -> np.ndarray:
        calls.append((len(data), name))
        return np.frombuffer(data, np.uint8).copy()

    upload = bytes(range(256)) * 1000
    first = decode(upload, "a.png")
    assert decode(bytes(upload), "a.png") is first  # an equal upload is a hit
    decode(upload, "b.png")
    assert calls == [(256_000, "a.png"), (256_000, "b.png")] and len(busy_entered) == 2
    # the key holds a digest, not the upload: only the two decoded arrays are counted
    assert cache.bytes_held == 2 * 256_000


def test_concurrent_callers_keep_the_bound():
    cache = ByteBoundedCache(4 * MB)

    def worker(offset: int) -> None:
        for i in range(30):
            cache.get_or_compute((offset, i), lambda: np.zeros(MB // 2, np.uint8))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.bytes_held <= cache.max_bytes and len(cache) == 8


def test_the_pages_pool_holds_at_least_sixteen_of_the_largest_decoded_dicoms():
    from core.data.downscale import MAX_SIDE

    largest = 2 * MAX_SIDE * MAX_SIDE * 4  # float32 pixels and modality values
    assert IMAGE_CACHE.max_bytes == IMAGE_CACHE_BYTES >= 16 * largest
