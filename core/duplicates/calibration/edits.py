"""The edits a radiograph suffers when it is re-acquired: copies for calibration, tests and the demo set.

Ranges follow what recycled films show: crop up to 20 % per side, rotation up to 10 degrees
(black or white fill), gamma 0.6-1.6, JPEG quality 30-90, downscale to 40-80 %, burned-in text,
sensor noise, and "combo": three different edits of the above, applied in a random order.
Copies keep the size an edit gives them (a crop is smaller, a downscale is small), as a real
re-export would, except the edits collections make when they re-export to a fixed size:
- "crop_resize": a crop of up to 20 % per side to another aspect ratio, resized back to the
  original's size (the film is stretched differently in x and y; the development set's own
  sources were made that way);
- "rotate_white": a rotation whose corners are filled with white, not black;
- "crop_gamma_jpeg", "rotate_gamma_jpeg": that crop, or a rotation (black or white fill), then
  a gamma and a JPEG re-encode (what a re-acquired copy from another collection usually has).
Each is its own family in the per-edit recall. The demo set keeps the first eight kinds
(`EDIT_KINDS`), so its files do not change.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SINGLE_EDITS = ("crop", "rotate", "gamma", "jpeg", "downscale", "text", "noise")
EDIT_KINDS = (*SINGLE_EDITS, "combo")  # the demo set's duplicates.csv `kind` column (unchanged)
REEXPORTS = {  # re-exports: each a chain of edits, applied in this order
    "crop_resize": ("crop_resize",),
    "rotate_white": ("rotate_white",),
    "crop_gamma_jpeg": ("crop_resize", "gamma", "jpeg"),
    "rotate_gamma_jpeg": ("rotate_any", "gamma", "jpeg"),
}
EDITS = (*EDIT_KINDS, *REEXPORTS)  # every family calibration and the evaluation report on
_TEXTS = ("PORTABLE", "AP SUPINE", "ERECT", "MOBILE", "L", "R")


@dataclass(frozen=True)
class EncodedImage:
    """An image file's bytes and the suffix to save it under."""

    data: bytes
    suffix: str  # ".png" or ".jpg"


def encode_png(img: Image.Image) -> EncodedImage:
    """PNG bytes of an image; PIL writes no timestamp, so equal pixels give equal bytes.

    Args:
        img: any PIL image.

    Returns:
        EncodedImage with suffix ".png".
    """
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)  # 4x faster than 6, 10 % larger
    return EncodedImage(buf.getvalue(), ".png")


def make_copy(img: Image.Image, kind: str, rng: np.random.Generator, keep_size: bool = False) -> EncodedImage:
    """Make a near-duplicate of a grey radiograph.

    Args:
        img: mode "L" original.
        kind: one of EDITS.
        rng: randomness for the edit's strength (and, for "combo", the three edits).
        keep_size: scale the copy back to the original's size (the demo set's images share one size).

    Returns:
        The copy's file bytes: JPEG for kind "jpeg", PNG otherwise.
    """
    if kind == "jpeg":
        return EncodedImage(_jpeg_bytes(img, rng), ".jpg")
    out = edit_image(img, kind, rng)
    if keep_size and out.size != img.size:
        out = out.resize(img.size, Image.Resampling.BILINEAR)
    return encode_png(out)


def edit_image(img: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    """Apply one edit (JPEG is encoded and decoded back) and return the edited mode "L" image."""
    w, h = img.size
    if kind == "crop":  # each side 0-20 %, at least one side 10-20 %
        f = rng.uniform(0.0, 0.2, 4)
        f[int(rng.integers(4))] = rng.uniform(0.1, 0.2)
        return img.crop((round(w * f[0]), round(h * f[1]), w - round(w * f[2]), h - round(h * f[3])))
    if kind == "crop_resize":  # each side 0-20 %, one 10-20 %: another aspect, stretched back
        return edit_image(img, "crop", rng).resize((w, h), Image.Resampling.BILINEAR)
    if kind in ("rotate", "rotate_white", "rotate_any"):  # scanners fill black, some exports white
        angle = rng.uniform(2.0, 10.0) * (1 if rng.uniform() < 0.5 else -1)
        white = kind == "rotate_white" or (kind == "rotate_any" and rng.uniform() < 0.5)
        return img.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=255 if white else 0)
    if kind == "gamma":
        gamma = rng.uniform(0.6, 0.85) if rng.uniform() < 0.5 else rng.uniform(1.2, 1.6)
        return img.point([round(255.0 * (v / 255.0) ** gamma) for v in range(256)])
    if kind == "jpeg":
        return Image.open(io.BytesIO(_jpeg_bytes(img, rng))).convert("L")
    if kind == "downscale":
        s = rng.uniform(0.4, 0.8)
        return img.resize((max(8, round(w * s)), max(8, round(h * s))), Image.Resampling.BOX)
    if kind == "text":
        out = img.copy()
        for _ in range(int(rng.integers(1, 3))):
            _burn_text(out, rng)
        return out
    if kind == "noise":
        noise = rng.standard_normal((h, w), dtype=np.float32) * np.float32(rng.uniform(5, 15))
        grey = np.clip(np.asarray(img, dtype=np.float32) + noise + np.float32(0.5), 0, 255)
        return Image.fromarray(grey.astype(np.uint8), mode="L")
    if kind == "combo":
        out = img
        for edit in rng.choice(SINGLE_EDITS, size=3, replace=False):
            out = edit_image(out, str(edit), rng)
        return out
    if kind in REEXPORTS:
        out = img
        for edit in REEXPORTS[kind]:
            out = edit_image(out, edit, rng)
        return out
    raise ValueError(f"unknown edit {kind!r}; expected one of {', '.join(EDITS)}")


def _jpeg_bytes(img: Image.Image, rng: np.random.Generator) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(rng.integers(30, 91)))
    return buf.getvalue()


def _burn_text(img: Image.Image, rng: np.random.Generator) -> None:
    """Burn a study annotation (projection, side marker or date) somewhere on the film, in place."""
    if rng.uniform() < 0.5:
        text = str(rng.choice(_TEXTS))
    else:
        text = f"{int(rng.integers(2018, 2025))}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}"
    w, h = img.size
    font = text_font(max(7, round(min(w, h) * rng.uniform(0.04, 0.08))))
    draw = ImageDraw.Draw(img)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = int(rng.integers(0, max(1, w - (right - left))))
    y = int(rng.integers(0, max(1, h - (bottom - top))))
    draw.text((x - left, y - top), text, fill=235 if rng.uniform() < 0.8 else 10, font=font)


@functools.lru_cache(maxsize=8)
def text_font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """PIL's built-in font at a pixel size (loading it costs more than drawing)."""
    return ImageFont.load_default(size=px)
