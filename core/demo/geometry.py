"""Drawing primitives for the synthetic radiograph phantoms (core.demo.phantom).

Coordinates are "canonical": x and y in [-1, 1], x left-to-right on the image, y top-to-bottom;
the image's left half is the patient's right (standard PA view). A Frame holds the canonical
coordinates of every pixel after the acquisition's zoom, shift and rotation, so anatomy is
written once in canonical units and positioning comes for free.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Frame:
    """Canonical coordinates of every pixel of an image (or of a window of it)."""

    x: np.ndarray  # (H, W) float32
    y: np.ndarray  # (H, W) float32
    s: np.ndarray  # (H, W) |x|, distance from the midline
    right: np.ndarray  # (H, W) bool, patient's right = image left
    px: float  # one pixel in canonical units
    size: int  # side of the whole image in pixels
    zoom: float
    angle: float  # degrees
    shift: tuple[float, float]

    def to_pixel(self, x: float, y: float, size: int) -> tuple[float, float]:
        """Canonical point -> (column, row) on a canvas of side `size`, inverting make_frame."""
        c, s = math.cos(math.radians(self.angle)), math.sin(math.radians(self.angle))
        pu = self.zoom * (c * x - s * y) + self.shift[0]
        pv = self.zoom * (s * x + c * y) + self.shift[1]
        return (pu + 1.0) * size / 2.0 - 0.5, (pv + 1.0) * size / 2.0 - 0.5

    def crop(self, x0: float, y0: float, x1: float, y1: float) -> tuple[Frame, tuple[slice, slice]] | None:
        """The sub-frame covering a canonical box, and its pixel window; None if off-image.

        Small structures are computed on their window only: a nodule costs its own pixels,
        not the whole image's.
        """
        cols, rows = zip(*(self.to_pixel(x, y, self.size) for x in (x0, x1) for y in (y0, y1)),
                         strict=True)
        c0, c1 = max(0, math.floor(min(cols)) - 2), min(self.size, math.ceil(max(cols)) + 3)
        r0, r1 = max(0, math.floor(min(rows)) - 2), min(self.size, math.ceil(max(rows)) + 3)
        if c0 >= c1 or r0 >= r1:
            return None
        win = (slice(r0, r1), slice(c0, c1))
        return replace(self, x=self.x[win], y=self.y[win], s=self.s[win], right=self.right[win]), win


def make_frame(size: int, zoom: float, shift: tuple[float, float], angle: float) -> Frame:
    """Map every pixel to canonical coordinates: pixel = zoom * rotate(angle) * canonical + shift.

    Args:
        size: image side in pixels.
        zoom: > 1 makes the body look larger.
        shift: (dx, dy) in canonical units.
        angle: rotation in degrees.

    Returns:
        Frame with x, y of shape (size, size).
    """
    u = (np.arange(size, dtype=np.float32) + 0.5) * (2.0 / size) - 1.0  # (W,)
    pu, pv = u[None, :] - shift[0], u[:, None] - shift[1]  # (1, W), (H, 1)
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    x = (c * pu + s * pv) / zoom  # (H, W)
    y = (-s * pu + c * pv) / zoom  # (H, W)
    return Frame(x=x, y=y, s=np.abs(x), right=x < 0, px=2.0 / (size * zoom), size=size,
                 zoom=zoom, angle=angle, shift=shift)


def paint(dens: np.ndarray, f: Frame, box: tuple[float, float, float, float],
          fn: Callable[[Frame], np.ndarray]) -> None:
    """Add fn(sub-frame) to `dens` in place, over the pixels of canonical box (x0, y0, x1, y1).

    Args:
        dens: (H, W) density map, modified in place.
        f: the whole image's frame.
        box: canonical (x0, y0, x1, y1) holding everything fn draws.
        fn: sub-frame -> density of the window's shape.
    """
    got = f.crop(*box)
    if got is not None:
        sub, win = got
        dens[win] += fn(sub)


def edge(d: np.ndarray | float, width: float) -> np.ndarray:
    """Smooth step from 0 (d <= -width/2) to 1 (d >= width/2).

    Turns a signed distance (positive inside) into a soft mask, antialiased over `width`
    canonical units. Works in place on one buffer: it runs about 30 times per image.
    """
    t = np.multiply(d, np.float32(1.0 / width), dtype=np.float32)
    t += np.float32(0.5)
    np.clip(t, 0.0, 1.0, out=t)
    out = t * t
    t *= np.float32(-2.0)
    t += np.float32(3.0)
    out *= t  # t^2 (3 - 2t)
    return out


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1] of shape (size, size): a cells x cells grid, upsampled."""
    grid = Image.fromarray(rng.random((cells, cells)).astype(np.float32), mode="F")
    out = np.asarray(grid.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
    return np.clip(out, 0.0, 1.0)
