"""Build bad and unusual image files at test time (no committed binaries).

Every builder takes a folder, writes one deterministic file into it and returns its path.
`build_all(folder)` writes them all; `VALID_CASES` must load, `BAD_CASES` must raise
`ImageReadError`. Reused by the reader, CLI, upload and folder-scanning tests.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    SecondaryCaptureImageStorage,
)

Builder = Callable[[Path], Path]
UID_ROOT = "2.25.1000"  # fixed UIDs keep the files byte-identical between runs

# Hand-computed expectations shared with the tests.
RESCALE_STORED = np.array([[0, 100, 200, 300], [400, 500, 600, 700],
                           [800, 900, 1000, 1100], [1200, 1300, 1400, 4095]], dtype=np.uint16)
RESCALE_SLOPE, RESCALE_INTERCEPT = 2.0, -1000.0
WINDOW_CENTERS, WINDOW_WIDTHS = [-600.0, 40.0], [1000.0, 400.0]  # multi-valued: first is used


# ---------------------------------------------------------------- plain images, valid
def _gray8(h: int = 24, w: int = 32) -> np.ndarray:
    """(h, w) uint8 horizontal ramp plus a deterministic noise texture."""
    ramp = np.linspace(0, 255, w)[None, :].repeat(h, 0)
    noise = np.random.default_rng(0).integers(-10, 10, (h, w))
    return np.clip(ramp + noise, 0, 255).astype(np.uint8)


def png16(folder: Path) -> Path:
    """16-bit grayscale PNG (mode I;16) with a ramp 0..65535: 1000 and 1001 both occur."""
    values = np.concatenate([np.linspace(0, 65535, 62).astype(np.uint16), [1000, 1001]])
    return _save(Image.fromarray(values.reshape(8, 8).astype(np.uint16)), folder / "ramp16.png")


def rgba_png(folder: Path) -> Path:
    """RGBA (200, 200, 200): left half opaque, right half fully transparent."""
    rgba = np.full((8, 8, 4), 200, np.uint8)
    rgba[:, :, 3] = 255
    rgba[:, 4:, 3] = 0
    return _save(Image.fromarray(rgba, "RGBA"), folder / "rgba.png")


def la_png(folder: Path) -> Path:
    """Gray + alpha: L = 100, A = 128 everywhere."""
    return _save(Image.new("LA", (6, 4), (100, 128)), folder / "gray_alpha.png")


def palette_png(folder: Path) -> Path:
    """Palette PNG: black, red, green, white quadrants."""
    im = Image.new("P", (8, 8))
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 255, 255, 255])
    im.putdata([(r // 4) * 2 + (c // 4) for r in range(8) for c in range(8)])
    return _save(im, folder / "palette.png")


def cmyk_jpeg(folder: Path) -> Path:
    """CMYK JPEG: left half K = 255 (black), right half no ink (white)."""
    im = Image.new("CMYK", (16, 16), (0, 0, 0, 0))
    im.paste((0, 0, 0, 255), (0, 0, 8, 16))
    return _save(im, folder / "cmyk.jpg", quality=95)


def exif_rotated_jpeg(folder: Path) -> Path:
    """Stored 48 wide x 24 tall with a white top-left block; EXIF Orientation = 6.

    Displayed (rotated 90 degrees clockwise) it is 24 wide x 48 tall, block at the top right.
    """
    arr = np.zeros((24, 48), np.uint8)
    arr[:8, :8] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(Image.fromarray(arr), folder / "rotated.jpg", quality=95, exif=exif)


def webp(folder: Path) -> Path:
    """Lossless WebP of the 8-bit ramp."""
    return _save(Image.fromarray(_gray8()), folder / "ramp.webp", lossless=True)


def animated_gif(folder: Path) -> Path:
    """Three distinct frames; the first is bright on the left, the others on the right."""
    first = np.zeros((8, 8), np.uint8)
    first[:, :4] = 255
    second = first[:, ::-1].copy()
    third = second.copy()
    third[:4] = 128
    frames = [Image.fromarray(a) for a in (first, second, third)]
    path = folder / "animated.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def colour_photo(folder: Path) -> Path:
    """A 640 x 400 outdoor 'photo' as JPEG: blue sky, green field, orange sun, some noise."""
    rng = np.random.default_rng(7)
    h, w = 400, 640
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.zeros((h, w, 3), np.float64)
    sky = y < 250
    rgb[sky] = np.stack([80 + 0.2 * y, 140 + 0.2 * y, 235 + 0 * y], -1)[sky]
    rgb[~sky] = np.stack([60 + 0 * y, 150 - 0.1 * (y - 250), 50 + 0 * y], -1)[~sky]
    sun = (x - 500) ** 2 + (y - 90) ** 2 < 45**2
    rgb[sun] = (250, 170, 40)
    rgb += rng.normal(0, 6, rgb.shape)
    path = folder / "holiday.jpg"
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB").save(path, quality=90)
    return path


def bmp(folder: Path) -> Path:
    return _save(Image.fromarray(_gray8()), folder / "ramp.bmp")


def tiff16(folder: Path) -> Path:
    """16-bit TIFF with values 0, 30000 and 65535."""
    values = np.array([[0, 30000], [65535, 30000]], np.uint16)
    return _save(Image.fromarray(values), folder / "sixteen.tif")


def spaces_name(folder: Path) -> Path:
    return _save(Image.fromarray(_gray8()), folder / "chest x-ray (copy 1).png")


def unicode_name(folder: Path) -> Path:
    return _save(Image.fromarray(_gray8()), folder / "röntgen_胸部 ñ.png")


# ---------------------------------------------------------------- plain images, bad
def zero_byte(folder: Path) -> Path:
    path = folder / "empty.png"
    path.write_bytes(b"")
    return path


def truncated_png(folder: Path) -> Path:
    data = _encode(Image.fromarray(_noise(64)), "PNG")
    return _write(folder / "truncated.png", data[: len(data) // 2])


def truncated_jpeg(folder: Path) -> Path:
    data = _encode(Image.fromarray(_noise(64)), "JPEG", quality=90)
    return _write(folder / "truncated.jpg", data[: len(data) // 2])


def text_as_png(folder: Path) -> Path:
    return _write(folder / "notes.png", b"patient list\nthis is not an image\n" * 8)


def pdf_as_jpg(folder: Path) -> Path:
    """Unknown format: a PDF header renamed .jpg."""
    return _write(folder / "report.jpg", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n" * 4)


def bomb_png(folder: Path) -> Path:
    """A valid 30000 x 30000 1-bit PNG of zeros: ~110 kB on disk, 900 megapixels decoded."""
    row = bytes(1 + 30000 // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row * 1000) for _ in range(30)) + comp.flush()
    return _write(folder / "bomb.png", _png(30000, 30000, bit_depth=1, idat=idat))


def over_limit_png(folder: Path) -> Path:
    """9000 x 8000 = 72 MP: under Pillow's own limit, over the reader's default 64 MP."""
    row = bytes(1 + 9000 // 8)
    idat = zlib.compress(row * 8000, 9)
    return _write(folder / "over_limit.png", _png(9000, 8000, bit_depth=1, idat=idat))


def huge_dims_png(folder: Path) -> Path:
    """A header declaring 100000 x 100000 pixels and no image data at all."""
    return _write(folder / "huge.png", _png(100000, 100000, bit_depth=8, idat=None))


# ---------------------------------------------------------------- DICOM, valid
def dicom_rescale_window(folder: Path) -> Path:
    """12-bit stored values, slope 2, intercept -1000, multi-valued window (first: -600/1000)."""
    ds = _dicom(RESCALE_STORED, bits=12)
    ds.RescaleSlope, ds.RescaleIntercept = RESCALE_SLOPE, RESCALE_INTERCEPT
    ds.WindowCenter, ds.WindowWidth = WINDOW_CENTERS, WINDOW_WIDTHS
    return _save_dicom(ds, folder / "rescale_window.dcm")


def dicom_mono1(folder: Path) -> Path:
    """MONOCHROME1: a dense (bone) centre stored LOW, air around it stored HIGH."""
    stored = np.full((8, 8), 3000, np.uint16)
    stored[2:6, 2:6] = 100
    ds = _dicom(stored, bits=12, photometric="MONOCHROME1")
    ds.WindowCenter, ds.WindowWidth = 1500, 3000
    return _save_dicom(ds, folder / "mono1.dcm")


def dicom_multiframe(folder: Path) -> Path:
    """Three frames, no window: frame 0 is bright on the left, frames 1-2 on the right."""
    first = np.zeros((6, 8), np.uint16)
    first[:, :4] = 1000
    stack = np.stack([first, first[:, ::-1], first[:, ::-1]])  # (3, 6, 8)
    ds = _dicom(stack, bits=12)
    return _save_dicom(ds, folder / "multiframe.dcm")


def dicom_no_window(folder: Path) -> Path:
    """No window or VOI LUT: the reader falls back to a percentile window."""
    return _save_dicom(_dicom(np.arange(100, dtype=np.uint16).reshape(10, 10) * 40, bits=12),
                       folder / "no_window.dcm")


def dicom_voi_lut(folder: Path) -> Path:
    """8-bit values 0..255 with a VOI LUT Sequence that reverses them (255 - x)."""
    ds = _dicom(np.arange(256, dtype=np.uint8).reshape(16, 16), bits=8)
    item = Dataset()
    item.add_new(0x00283002, "US", [256, 0, 8])  # LUTDescriptor; the VRs are ambiguous
    item.add_new(0x00283006, "US", list(range(255, -1, -1)))  # LUTData
    ds.VOILUTSequence = [item]
    return _save_dicom(ds, folder / "voi_lut.dcm")


def dicom_jpeg_baseline(folder: Path) -> Path:
    """Encapsulated JPEG Baseline (decodable with Pillow) of the 8-bit ramp."""
    gray = _gray8()
    ds = _dicom(gray, bits=8)
    ds.PixelData = encapsulate([_encode(Image.fromarray(gray), "JPEG", quality=95)])
    ds["PixelData"].VR = "OB"
    return _save_dicom(ds, folder / "jpeg_baseline.dcm", syntax=JPEGBaseline8Bit)


def dicom_no_preamble(folder: Path) -> Path:
    """An old-style DICOM: no 128-byte preamble, no 'DICM', no meta header."""
    ds = _dicom(np.arange(16, dtype=np.uint16).reshape(4, 4), bits=12)
    buf = io.BytesIO()
    ds.save_as(buf, implicit_vr=True, little_endian=True)
    return _write(folder / "no_preamble.dcm", buf.getvalue())


def unicode_dicom(folder: Path) -> Path:
    return _save_dicom(_dicom(np.arange(16, dtype=np.uint16).reshape(4, 4), bits=12),
                       folder / "Thorax Ø 1 — ap.dcm")


# ---------------------------------------------------------------- DICOM, bad
def dicom_no_pixels(folder: Path) -> Path:
    ds = _dicom(None, bits=12)
    return _save_dicom(ds, folder / "no_pixels.dcm")


def dicom_jpegls(folder: Path) -> Path:
    """JPEG-LS with bogus data: no installed plugin decodes JPEG-LS here."""
    ds = _dicom(np.zeros((8, 8), np.uint16), bits=12)
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xf7" + bytes(28)])
    ds["PixelData"].VR = "OB"
    return _save_dicom(ds, folder / "jpegls.dcm", syntax=JPEGLSLossless)


def dicom_j2k_bogus(folder: Path) -> Path:
    """JPEG 2000 declared (Pillow can decode it) but the codestream is garbage."""
    ds = _dicom(np.zeros((8, 8), np.uint16), bits=12)
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(60)])
    ds["PixelData"].VR = "OB"
    return _save_dicom(ds, folder / "j2k_bogus.dcm", syntax=JPEG2000Lossless)


def dicom_huge_dims(folder: Path) -> Path:
    """Rows = Columns = 60000 declared over 8 bytes of pixel data."""
    ds = _dicom(np.zeros((2, 2), np.uint16), bits=12)
    ds.Rows = ds.Columns = 60000
    return _save_dicom(ds, folder / "huge_dims.dcm")


def dicom_short_pixels(folder: Path) -> Path:
    """64 x 64 x 16 bit declared, 100 bytes of pixel data."""
    ds = _dicom(np.zeros((64, 64), np.uint16), bits=12)
    ds.PixelData = bytes(100)
    return _save_dicom(ds, folder / "short_pixels.dcm")


def truncated_dicom(folder: Path) -> Path:
    data = dicom_rescale_window(folder).read_bytes()
    return _write(folder / "truncated.dcm", data[:300])


def text_as_dcm(folder: Path) -> Path:
    return _write(folder / "scan.dcm", b"this is a text file, not DICOM\n" * 10)


VALID_CASES: dict[str, Builder] = {f.__name__: f for f in (
    png16, rgba_png, la_png, palette_png, cmyk_jpeg, exif_rotated_jpeg, webp, animated_gif,
    bmp, tiff16, spaces_name, unicode_name, dicom_rescale_window, dicom_mono1,
    dicom_multiframe, dicom_no_window, dicom_voi_lut, dicom_jpeg_baseline, dicom_no_preamble,
    unicode_dicom,
)}
BAD_CASES: dict[str, Builder] = {f.__name__: f for f in (
    zero_byte, truncated_png, truncated_jpeg, text_as_png, pdf_as_jpg, bomb_png, over_limit_png,
    huge_dims_png, dicom_no_pixels, dicom_jpegls, dicom_j2k_bogus, dicom_huge_dims,
    dicom_short_pixels, truncated_dicom, text_as_dcm,
)}


# ---------------------------------------------------------------- zips the disk cannot hold
# Each refuses the whole upload before anything is written, in one line with these words.
BAD_ZIPS: dict[str, tuple[list[str], str]] = {
    "file_then_folder": (["Normal/a.png", "Normal/a.png/b.png"],
                         "both a file and a folder: Normal/a.png"),
    "folder_then_file": (["Normal/a.png/b.png", "Normal/a.png"],
                         "both a file and a folder: Normal/a.png"),
    "nested_2000": (["/".join(["d"] * 2000) + "/x.png"], "nested 2000 folders deep"),
    "long_folder": (["N" * 300 + "/a.png"], "a name over 255 bytes: NNNN"),
    "long_file": (["Normal/" + "a" * 300 + ".png"], "a name over 255 bytes: Normal/aaaa"),
    "long_utf8": (["Normal/" + "é" * 130 + ".png"], "a name over 255 bytes"),  # 260 chars' bytes
}


def bad_zip(case: str) -> bytes:
    """A zip of two good class folders plus BAD_ZIPS[case]'s entries (each a tiny PNG)."""
    good = ["COVID/c.png", "Normal/n.png"]
    png = _encode(Image.fromarray(_gray8(8, 8)), "PNG")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in good + BAD_ZIPS[case][0]:
            z.writestr(name, png)
    return buf.getvalue()


def build_all(folder: Path) -> dict[str, Path]:
    """Write every case into `folder` (created if needed).

    Args:
        folder: destination; each case gets its own subfolder so names never collide.

    Returns:
        case name -> file path, valid cases first.
    """
    out: dict[str, Path] = {}
    for case, build in {**VALID_CASES, **BAD_CASES}.items():
        sub = Path(folder) / case
        sub.mkdir(parents=True, exist_ok=True)
        out[case] = build(sub)
    return out


# ---------------------------------------------------------------- helpers
def _noise(size: int) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (size, size), dtype=np.uint8)


def _encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _save(im: Image.Image, path: Path, **kw: object) -> Path:
    im.save(path, **kw)
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _png(width: int, height: int, *, bit_depth: int, idat: bytes | None) -> bytes:
    """A grayscale PNG from chunks, so huge headers cost nothing to build."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + (chunk(b"IDAT", idat) if idat is not None else b"")
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")


def _dicom(pixels: np.ndarray | None, *, bits: int, photometric: str = "MONOCHROME2") -> Dataset:
    """A minimal DX-like dataset; `pixels` is (H, W) or (F, H, W) unsigned, or None."""
    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = f"{UID_ROOT}.1"
    ds.Modality, ds.ViewPosition, ds.StudyDate = "DX", "PA", "20240102"
    ds.PatientID = "TEST-0001"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.PixelRepresentation = 0
    ds.BitsAllocated = 8 if bits <= 8 else 16
    ds.BitsStored, ds.HighBit = bits, bits - 1
    if pixels is not None:
        ds.Rows, ds.Columns = pixels.shape[-2:]
        if pixels.ndim == 3:
            ds.NumberOfFrames = pixels.shape[0]
        dtype = np.uint8 if ds.BitsAllocated == 8 else "<u2"
        ds.PixelData = np.ascontiguousarray(pixels, dtype=dtype).tobytes()
    else:
        ds.Rows, ds.Columns = 4, 4
    return ds


def _save_dicom(ds: Dataset, path: Path, syntax: str | None = None) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = UID(syntax) if syntax else ExplicitVRLittleEndian
    meta.ImplementationClassUID = f"{UID_ROOT}.9"
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)
    return path
