"""The memory bound every decoder keeps, defined once: big images are reduced while decoding.

PNG, JPEG, TIFF, ... (`core.data.imageio`) and DICOM (`core.data.dicom`) both:
- decode an image with a side over `max_side` (default MAX_SIDE) reduced by the integer
  `reduce_factor`, right after decoding and before any float conversion, so the float steps
  (grayscale, modality LUT, window) only ever see the reduced image;
- decode images over BIG_PIXELS one at a time, on one thread (`one_big_at_a_time`): a server
  answering several uploads holds one full-size buffer, not one per request, and that
  thread's single malloc arena reuses the memory of one decode for the next.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

MAX_SIDE = 2048  # decode larger images downscaled to at most this side (by 2, 3, ...)
BIG_PIXELS = 16_000_000  # images over this many pixels decode one at a time
_BAND_BYTES = 8 << 20  # block_mean sums this much of the input at a time
_BIG_DECODES = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cxr-big-decode")

T = TypeVar("T")


def reduce_factor(width: int, height: int, max_side: int | None) -> int:
    """The least integer factor that brings the longer side to at most `max_side`.

    Args:
        width, height: the image's size in pixels.
        max_side: the longest side wanted; None or 0: no reduction.

    Returns:
        1 (no reduction) or more.
    """
    if not max_side or max(width, height) <= max_side:
        return 1
    return math.ceil(max(width, height) / max_side)


def block_mean(a: np.ndarray, factor: int) -> np.ndarray:
    """`a` shrunk by `factor` on both sides, each pixel the mean of a factor x factor block.

    Sums a band of rows at a time, so no full-size temporary is made. Rows and columns past
    the last whole block are dropped (at most factor - 1 of each).

    Args:
        a: (H, W) or (H, W, C), any integer or float dtype.
        factor: 1 or more.

    Returns:
        (H // factor, W // factor[, C]) in `a`'s dtype (integer means rounded to nearest).
    """
    if factor <= 1:
        return a
    h, w = a.shape[0] // factor, a.shape[1] // factor
    rest = a.shape[2:]
    integer = np.issubdtype(a.dtype, np.integer)
    out = np.empty((h, w, *rest), dtype=a.dtype.newbyteorder("="))
    band = max(1, _BAND_BYTES // max(1, a[0].nbytes * factor))  # output rows per step
    for r0 in range(0, h, band):
        r1 = min(h, r0 + band)
        block = a[r0 * factor: r1 * factor, : w * factor]  # a view
        block = block.reshape(r1 - r0, factor, w, factor, *rest)  # (b, f, w, f[, C])
        sums = block.sum(axis=(1, 3), dtype=np.int64 if integer else np.float64)  # (b, w[, C])
        means = sums / (factor * factor)
        out[r0:r1] = np.rint(means) if integer else means
    return out


def one_big_at_a_time(pixels: int, decode: Callable[[], T]) -> T:
    """Run `decode` on the single big-decode thread when the image has over BIG_PIXELS pixels.

    Args:
        pixels: the image's pixel count (width * height), known from its header.
        decode: decodes and reduces the image; its result must be the reduced image.

    Returns:
        What `decode` returned (its exception is raised here).
    """
    if pixels <= BIG_PIXELS:
        return decode()
    return _BIG_DECODES.submit(decode).result()
