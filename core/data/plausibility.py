"""Does an image look like a chest radiograph at all? Colour, shape and grey range, no model.

A model answers every query with its nearest neighbours, photos and drawings included; these
checks say when the pixels themselves are unlike a radiograph, before the scores are read.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

# Mean spread between the colour channels (max - min), as a fraction of full scale, above
# which an image is in colour. Grey films saved as RGB JPEG stay under 0.02 (chroma noise).
COLOUR_LIMIT = 0.06
ASPECT_RANGE = (0.5, 2.0)  # width / height; chest films are about 0.8-1.25
MIN_GREY_SPREAD = 0.15  # 1st to 99th percentile of the grey values, as a fraction of full scale
_GREY_MODES = {"1", "L", "LA", "I", "F"}


@dataclass(frozen=True)
class PixelCheck:
    """What the pixels say: one line per problem (empty: plausible), and the measured values."""

    problems: tuple[str, ...]
    colourfulness: float  # mean channel spread, 0 for grey images
    aspect: float  # width / height
    grey_spread: float  # 99th minus 1st percentile of the grey pixels

    @property
    def plausible(self) -> bool:
        """True when nothing in the pixels argues against a radiograph."""
        return not self.problems


def colourfulness(source: bytes | str | Path) -> float:
    """Mean max-minus-min spread of the colour channels, 0..1 (0 for grey and DICOM files).

    Reads a reduced copy (at most 256 px a side), so a large photo costs little.
    """
    try:
        fp = io.BytesIO(source) if isinstance(source, bytes) else source
        with Image.open(fp) as im:
            if im.mode in _GREY_MODES or im.mode.startswith("I;16"):
                return 0.0
            im.draft("RGB", (256, 256))  # JPEG: decode at a reduced scale
            im = im.convert("RGB")
            im.thumbnail((256, 256))
            rgb = np.asarray(im, dtype=np.int16)  # (h, w, 3)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return 0.0  # DICOM and anything Pillow cannot open: judged on the grey pixels only
    return float((rgb.max(axis=-1) - rgb.min(axis=-1)).mean() / 255.0)


def radiograph_check(pixels: np.ndarray, source: bytes | str | Path | None = None,
                     size: tuple[int, int] | None = None) -> PixelCheck:
    """Judge whether an image could be a radiograph.

    Args:
        pixels: (H, W) grey image in [0, 1] as decoded for the search.
        source: the file's bytes or path, for the colour check (None: skip it).
        size: the file's own (width, height) when the pixels were decoded downscaled, so the
            shape named is the file's (None: the pixels' shape).

    Returns:
        PixelCheck; each problem is a short clause ("it is in colour", ...).
    """
    w, h = size if size is not None else (pixels.shape[1], pixels.shape[0])
    aspect = w / max(h, 1)
    lo, hi = (float(v) for v in np.percentile(pixels, [1, 99]))
    spread = hi - lo
    colour = colourfulness(source) if source is not None else 0.0
    problems = []
    if colour > COLOUR_LIMIT:
        problems.append(f"it is in colour (channel spread {colour:.2f}; radiographs are grey)")
    if not ASPECT_RANGE[0] <= aspect <= ASPECT_RANGE[1]:
        problems.append(f"its shape is {w} x {h} px (aspect {aspect:.2f}; chest films are near square)")
    if spread < MIN_GREY_SPREAD:
        problems.append(f"it has almost no grey range (1st-99th percentile {lo:.2f}-{hi:.2f})")
    return PixelCheck(tuple(problems), round(colour, 4), round(aspect, 4), round(spread, 4))
