"""Read any supported image file or upload into one (H, W) float32 grayscale array in [0, 1].

Training, embedding and queries all call `load_image`, so an image looks the same everywhere.

Choices, documented once:
- 8-bit images are divided by 255; 16-bit images (PNG/TIFF mode I;16) by 65535, so the file's
  full range is kept (a 12-bit image stored in 16 bits therefore looks dark, as it does in
  any viewer). 32-bit integer images in [0, 65535] are treated as 16-bit, others and float
  images are min-max scaled.
- Colour becomes luma with ITU-R 601-2 weights (as Pillow's convert('L')), computed in float.
- Alpha is composited on black (gray * alpha): transparent areas become background, which is
  black on a radiograph, and what is stored under them is never shown.
- JPEG EXIF orientation is applied (`ImageOps.exif_transpose`), so pixels are as displayed.
- Multi-frame files (animated GIF, multi-page TIFF, multi-frame DICOM) give their first frame;
  meta['frames'] / meta['NumberOfFrames'] says there were more.
- DICOM: see `core.data.dicom` (rescale, VOI LUT or window, else 0.5-99.5 percentile window,
  MONOCHROME1 inverted).
- Memory: every format keeps the one bound of `core.data.downscale`: an image with a side
  over `max_side` (default MAX_SIDE) is decoded downscaled by an integer factor (JPEG
  through Pillow's `draft`, the decoder skipping the detail; others by a box filter right
  after decoding, before any float conversion; DICOM likewise, see `core.data.dicom`), and
  images over BIG_PIXELS decode one at a time on one thread.
- Safety: the pixel count is checked before any pixels are decoded (Pillow reads only the
  header on open; for DICOM Rows * Columns) and images over `max_pixels` are refused. Every
  failure raises `ImageReadError` with one line naming the file; no Pillow or pydicom
  exception escapes.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.data.dicom import DicomError, Window, apply_window, read_dicom
from core.data.downscale import MAX_SIDE, block_mean, one_big_at_a_time, reduce_factor
from core.errors import UserError

__all__ = [
    "MAX_PIXELS", "MAX_SIDE", "SUPPORTED_SUFFIXES", "ImageReadError", "LoadedImage", "Window",
    "apply_window", "is_supported", "load_image", "read_gray", "to_uint8",
]

MAX_PIXELS = 64_000_000  # a 4,300 x 4,300 chest radiograph is ~18.5 MP
DICOM_SUFFIXES = (".dcm", ".dicom")
SUPPORTED_SUFFIXES: tuple[str, ...] = (
    ".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", *DICOM_SUFFIXES,
)
# Formats Pillow may open; a closed list so content never reaches plugins such as EPS,
# which would start Ghostscript. (The JPEG opener also returns multi-picture 'MPO' JPEGs.)
PIL_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601-2
PREVIEW_SIDE = 1024  # what a page shows: screen size, not file size
PREVIEW_MAX_ASPECT = 16  # a preview's long side is at most this many times its short side


class ImageReadError(UserError):
    """One-line, user-facing reason the file cannot be read: '<file>: <reason>'.

    Args:
        name: the file name or path as the user knows it.
        reason: what is wrong; None when `name` already holds the whole message (this is how
            pickling and torch's DataLoader workers rebuild exceptions).
    """

    def __init__(self, name: str, reason: str | None = None) -> None:
        self.name = name
        self.reason = " ".join(str(reason).split()) if reason is not None else ""
        super().__init__(f"{name}: {self.reason}" if reason is not None else name)

    def __reduce__(self) -> tuple[type, tuple[str, str | None]]:
        return (type(self), (self.name, self.reason) if self.reason else (self.name, None))


@dataclass(frozen=True, eq=False)  # eq on arrays is ambiguous; compare fields explicitly
class LoadedImage:
    """A decoded image.

    pixels: (H, W) float32 in [0, 1], display-ready (windowed, MONOCHROME1 inverted).
    raw: (H, W) float32 modality values (DICOM after rescale), None for ordinary images.
    window: the window used for `pixels` (DICOM), None otherwise.
    meta: key tags that are present (DICOM) or format/mode/size (other images), as strings.
    source_format: 'png', 'jpeg', 'webp', 'bmp', 'tiff', 'gif' or 'dicom'.
    """

    pixels: np.ndarray
    raw: np.ndarray | None
    window: Window | None
    meta: dict[str, str]
    source_format: str


def load_image(
    source: str | Path | bytes, *, name: str | None = None, max_pixels: int = MAX_PIXELS,
    max_side: int | None = MAX_SIDE,
) -> LoadedImage:
    """Decode a file path or uploaded bytes into display-ready grayscale.

    Args:
        source: path, or the raw bytes of an upload.
        name: file name for format hints and messages (defaults to the path; '<upload>').
        max_pixels: refuse images with more pixels than this, checked before decoding.
        max_side: decode larger images downscaled by an integer factor to at most this
            side (None: full size). meta['size'] stays the file's size.

    Returns:
        LoadedImage with (H, W) float32 pixels in [0, 1].

    Raises:
        ImageReadError: the file is missing, empty, corrupt, too large or not an image.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        label = name or "<upload>"
        head = data[:132]
        fp: str | IO[bytes] = io.BytesIO(data)
        size = len(data)
    else:
        path = Path(source)
        label = name or str(path)
        try:
            size = path.stat().st_size
            if not path.is_file():
                raise ImageReadError(label, "is not a file")
            with path.open("rb") as f:
                head = f.read(132)
        except OSError as e:
            raise ImageReadError(label, f"cannot open file ({e.strerror or e})") from e
        fp = str(path)
    if size == 0:
        raise ImageReadError(label, "file is empty (0 bytes)")
    try:
        return _dispatch(fp, label, head, max_pixels, max_side)
    except ImageReadError:
        raise
    except DicomError as e:
        raise ImageReadError(label, str(e)) from e
    except Exception as e:  # last resort: no decoder exception reaches the caller
        raise ImageReadError(label, f"cannot be read ({type(e).__name__}: {_short(e)})") from e


def read_gray(
    source: str | Path | bytes, *, name: str | None = None, max_pixels: int = MAX_PIXELS,
    max_side: int | None = MAX_SIDE,
) -> np.ndarray:
    """Shortcut for `load_image(...).pixels`.

    Args:
        source: path or uploaded bytes.
        name: file name for messages when `source` is bytes.
        max_pixels: refuse larger images.

    Returns:
        (H, W) float32 in [0, 1].
    """
    return load_image(source, name=name, max_pixels=max_pixels, max_side=max_side).pixels


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Round [0, 1] floats to 8-bit for display or PNG export.

    Args:
        pixels: (H, W) float in [0, 1]; values outside are clipped, NaN becomes 0.

    Returns:
        (H, W) uint8.
    """
    clean = np.nan_to_num(np.asarray(pixels, dtype=np.float32), nan=0.0)
    return np.rint(np.clip(clean, 0.0, 1.0) * 255.0).astype(np.uint8)


def preview(pixels: np.ndarray, side: int = PREVIEW_SIDE) -> np.ndarray:
    """An 8-bit copy for the screen: at most `side` pixels on its longer side, and never
    thinner than 1 : PREVIEW_MAX_ASPECT (the short side padded with black), so a page may show
    it at any width from PREVIEW_MAX_ASPECT pixels (a 4000 x 1 strip shown 440 px wide was
    scaled to 0 px high, and Streamlit raised).

    Args:
        pixels: (H, W) float in [0, 1].
        side: the longest side shown.

    Returns:
        (h, w) uint8, the image itself in 8 bits when already small and not a thin strip.
    """
    small = to_uint8(pixels)
    h, w = small.shape[:2]
    if max(h, w) > side:
        scale = side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = np.asarray(Image.fromarray(small).resize(size, Image.Resampling.BOX))
        h, w = small.shape[:2]
    short = -(-max(h, w) // PREVIEW_MAX_ASPECT)  # ceil: the least short side allowed
    if min(h, w) >= short:
        return small
    pad_h, pad_w = max(0, short - h), max(0, short - w)
    return np.pad(small, ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)))


def is_supported(path: str | Path) -> bool:
    """True for a supported suffix, or a suffix-less existing file with the DICOM preamble.

    Args:
        path: file path (need not exist when the suffix decides).

    Returns:
        Whether `load_image` is expected to handle the file.
    """
    p = Path(path)
    if p.suffix.lower() in SUPPORTED_SUFFIXES:
        return True
    if p.suffix and not p.suffix[1:].isdigit():
        return False  # UID-named DICOM files ('1.2.840....5') end in digits
    try:
        with p.open("rb") as f:
            return f.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def _dispatch(fp: str | IO[bytes], label: str, head: bytes, max_pixels: int,
              max_side: int | None) -> LoadedImage:
    if head[128:132] == b"DICM":
        return _load_dicom(fp, max_pixels, max_side, force=False)
    try:
        return _load_pillow(fp, label, max_pixels, max_side)
    except UnidentifiedImageError:
        # DICOM without the 128-byte preamble (older files): trust the suffix, or a first tag
        # in group 0008 or 0002.
        if Path(label).suffix.lower() in DICOM_SUFFIXES or head[:2] in (b"\x08\x00", b"\x02\x00"):
            return _load_dicom(_rewind(fp), max_pixels, max_side, force=True)
        raise ImageReadError(label, _unidentified_reason(head)) from None


def _load_dicom(fp: str | IO[bytes], max_pixels: int, max_side: int | None,
                force: bool) -> LoadedImage:
    image = read_dicom(fp, max_pixels=max_pixels, max_side=max_side, force=force)
    return LoadedImage(image.pixels, image.raw, image.window, image.meta, "dicom")


def _reduce(im: Image.Image, factor: int) -> Image.Image:
    """`im` shrunk by `factor` with a box filter, without a full-size float copy."""
    if factor <= 1:
        return im
    if im.mode in ("1", "P"):
        im = im.convert("L" if im.mode == "1" else ("RGBA" if im.has_transparency_data else "RGB"))
    if im.mode.startswith("I;16"):  # Pillow cannot reduce 16-bit: average blocks in numpy
        return Image.fromarray(block_mean(np.asarray(im), factor))  # (H/f, W/f) mode I;16
    return im.reduce(factor)


def _orientation(im: Image.Image, fmt: str) -> int | None:
    """The EXIF orientation, read from the header only."""
    if fmt == "PNG":  # PngImageFile.getexif() decodes every pixel to look past the image data
        raw = im.info.get("exif")
        if not raw:
            return None
        exif = Image.Exif()
        exif.load(raw)
        return exif.get(0x0112)
    return im.getexif().get(0x0112)


def _decode_reduced(im: Image.Image, factor: int) -> Image.Image:
    """Decode `im` and shrink it by `factor`, dropping the full-size buffer at once."""
    im.load()
    small = _reduce(im, factor)
    if small is not im:
        im.im = None  # type: ignore[assignment]  # free the full-size pixels before returning
    return small


def _load_pillow(fp: str | IO[bytes], label: str, max_pixels: int,
                 max_side: int | None = MAX_SIDE) -> LoadedImage:
    try:
        with Image.open(fp, formats=PIL_FORMATS) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise ImageReadError(label, _bomb_reason(max_pixels, width, height))
            fmt, mode, frames = str(im.format), im.mode, int(getattr(im, "n_frames", 1))
            orientation = _orientation(im, fmt)  # EXIF Orientation
            factor = reduce_factor(width, height, max_side)
            if factor > 1 and fmt in ("JPEG", "MPO"):  # the decoder scales by 1/2, 1/4, 1/8
                im.draft(im.mode, (math.ceil(width / factor), math.ceil(height / factor)))
                factor = reduce_factor(*im.size, max_side)
            small = one_big_at_a_time(width * height, lambda: _decode_reduced(im, factor))
            try:
                small = ImageOps.exif_transpose(small)
            except Exception:  # a broken EXIF block should not make the pixels unreadable
                pass
            pixels = _pillow_to_gray(small)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageReadError(label, _bomb_reason(max_pixels)) from e
    except (UnidentifiedImageError, ImageReadError):
        raise
    except (OSError, SyntaxError, EOFError, ValueError) as e:
        raise ImageReadError(label, f"{_format_name(label)} is truncated or corrupt ({_short(e)})") from e
    rotated = orientation in (5, 6, 7, 8)
    meta = {"format": fmt, "mode": mode, "size": f"{height}x{width}" if rotated else f"{width}x{height}"}
    if pixels.shape[0] * pixels.shape[1] < width * height:
        meta["decoded_size"] = f"{pixels.shape[1]}x{pixels.shape[0]}"
    if frames > 1:
        meta["frames"] = str(frames)
    if orientation not in (None, 1):
        meta["exif_orientation"] = str(orientation)
    source_format = {"MPO": "jpeg"}.get(fmt, fmt.lower())
    return LoadedImage(pixels, None, None, meta, source_format)


def _pillow_to_gray(im: Image.Image) -> np.ndarray:
    """(H, W) float32 in [0, 1] from any Pillow mode; see the module docstring for the rules.

    Computed in float32, a channel at a time (an (H, W, 3) float64 copy of a 2,048 px RGB
    image alone was 100 MB); only 32-bit integer and float images, which float32 cannot hold
    exactly, are scaled in float64.
    """
    if im.mode == "P":
        im = im.convert("RGBA" if im.has_transparency_data else "RGB")
    mode = im.mode
    if mode in ("1", "L"):
        gray = np.asarray(im.convert("L")).astype(np.float32)
        gray /= 255.0
    elif mode.startswith("I;16"):
        gray = np.asarray(im).astype(np.float32)
        gray /= 65535.0
    elif mode in ("I", "F"):
        values = np.nan_to_num(np.asarray(im, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(values.min()), float(values.max())
        if mode == "I" and lo >= 0 and hi <= 65535:
            gray = (values / 65535.0).astype(np.float32)
        else:
            gray = ((values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)).astype(np.float32)
    elif mode in ("LA", "La", "PA", "RGBA", "RGBa"):
        rgba = np.asarray(im.convert("RGBA"))  # (H, W, 4) uint8
        gray = _luma(rgba)
        gray *= rgba[..., 3]  # composite on black
        gray /= 255.0
    else:  # RGB, CMYK, YCbCr, LAB, HSV, ...
        gray = _luma(np.asarray(im.convert("RGB")))
    return np.clip(gray, 0.0, 1.0, out=gray)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W) float32 luma in [0, 1] of (H, W, >=3) uint8, one channel at a time."""
    gray = np.zeros(rgb.shape[:2], np.float32)
    for channel, weight in enumerate(LUMA):
        gray += rgb[..., channel] * np.float32(weight / 255.0)
    return gray


def _bomb_reason(max_pixels: int, width: int | None = None, height: int | None = None) -> str:
    size = f"{width}x{height} = {width * height:,} pixels" if width and height else "image"
    return f"refused: {size} is over the limit of {max_pixels:,} pixels (possible decompression bomb)"


def _unidentified_reason(head: bytes) -> str:
    expected = "expected PNG, JPEG, WebP, BMP, TIFF, GIF or DICOM"
    sample = head[:64]
    if sample and all(32 <= b < 127 or b in b"\t\r\n" for b in sample):
        return f"contains text, not image data ({expected})"
    return f"unknown or unsupported image format ({expected})"


def _format_name(label: str) -> str:
    suffix = Path(label).suffix.lower().lstrip(".")
    return {"jpg": "JPEG", "tif": "TIFF"}.get(suffix, suffix.upper() or "image")


def _rewind(fp: str | IO[bytes]) -> str | IO[bytes]:
    if not isinstance(fp, str):
        fp.seek(0)
    return fp


def _short(e: BaseException, limit: int = 160) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
