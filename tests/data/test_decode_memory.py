"""Bounded memory per request (issue 10 case 3, issue 28 item 8): big images, DICOM included,
decode downscaled, never through float64 at full size, one big decode at a time; two 64 MP
uploads stay under +600 MB."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

from core.data.imageio import MAX_SIDE, load_image, preview


def _png(array: np.ndarray, mode: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format="PNG")
    return buf.getvalue()


def test_a_big_image_decodes_downscaled_keeping_its_size_in_meta():
    a = np.tile(np.arange(256, dtype=np.uint8), (2 * MAX_SIDE + 10, 17))[:, : 2 * MAX_SIDE + 4]
    image = load_image(_png(np.ascontiguousarray(a), "L"), name="big.png")
    h, w = image.pixels.shape
    assert max(h, w) <= MAX_SIDE and image.pixels.dtype == np.float32
    assert image.meta["size"] == f"{a.shape[1]}x{a.shape[0]}"
    assert image.meta["decoded_size"] == f"{w}x{h}"
    assert abs(float(image.pixels.mean()) - float(a.mean()) / 255) < 2e-3  # a box filter


def test_a_big_16_bit_image_is_averaged_in_blocks():
    a = np.zeros((MAX_SIDE + 2, 4), np.uint16)
    a[0::2] = 60_000  # rows alternate: block means are 30,000
    im = Image.fromarray(a)  # mode I;16
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    pixels = load_image(buf.getvalue(), name="x.png").pixels
    assert pixels.shape[0] <= MAX_SIDE
    assert np.allclose(pixels[:-1], 30_000 / 65535, atol=1e-4)


def test_a_big_jpeg_is_decoded_at_a_reduced_scale():
    rgb = np.random.default_rng(0).integers(0, 255, (MAX_SIDE * 2 + 8, 600, 3), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="JPEG")
    image = load_image(buf.getvalue(), name="x.jpg")
    assert max(image.pixels.shape) <= MAX_SIDE


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_colour_becomes_gray_in_float32_a_channel_at_a_time(mode):
    """A MAX_SIDE-square colour PNG: the numpy side peaks at about 3 float32 images (the
    uint8 array, the sum and one channel). Before: 8 (RGB) and 13 (RGBA), through float64."""
    rng = np.random.default_rng(0)
    data = _png(rng.integers(0, 256, (MAX_SIDE, MAX_SIDE, len(mode)), np.uint8), mode)
    tracemalloc.start()
    try:
        pixels = load_image(data, name="colour.png").pixels
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert pixels.dtype == np.float32 and pixels.shape == (MAX_SIDE, MAX_SIDE)
    assert peak < 3.5 * pixels.nbytes, f"peak {peak / pixels.nbytes:.1f} float32 images"


def test_preview_is_screen_sized_uint8():
    shown = preview(np.random.default_rng(0).random((3000, 1500), dtype=np.float32), side=1024)
    assert shown.dtype == np.uint8 and shown.shape == (1024, 512)
    small = np.full((10, 20), 0.5, np.float32)
    assert preview(small).shape == (10, 20)


def test_a_thin_strip_is_padded_to_a_showable_shape():
    row = np.linspace(0, 1, 4000, dtype=np.float32)[None, :]  # 4000 x 1
    shown = preview(row)
    assert shown.shape == (64, 1024)  # 1024 / PREVIEW_MAX_ASPECT rows, the strip in the middle
    assert np.flatnonzero(shown.max(axis=1)).tolist() == [31] and shown[31].max() == 255
    assert preview(row.T).shape == (1024, 64)
    assert preview(np.ones((3, 100), np.float32)).shape == (7, 100)  # small: padded only
    assert preview(np.ones((7, 100), np.float32)).shape == (7, 100)


def _dicom(stored: np.ndarray, **tags: object) -> bytes:
    """A 16-bit (12 stored) MONOCHROME2 DX file holding `stored` (H, W), as uploaded bytes."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = "2.25.1000.28"
    ds.Modality, ds.PhotometricInterpretation, ds.SamplesPerPixel = "DX", "MONOCHROME2", 1
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    for key, value in tags.items():
        setattr(ds, key, value)
    ds.PixelData = np.ascontiguousarray(stored, dtype="<u2").tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_a_big_dicom_upload_decodes_downscaled_within_a_few_bytes_a_pixel():
    """16 MP of 16-bit DICOM (32 MB): the whole decode peaks at a few times the frame itself.
    Before, pixels went through float64 at full size: 720 MB traced for this file."""
    side = 4_000
    stored = (np.add.outer(np.arange(side), np.arange(side)) % 4096).astype(np.uint16)
    data = _dicom(stored, RescaleSlope=2, RescaleIntercept=-1000, WindowCenter=3000,
                  WindowWidth=8192)
    del stored
    tracemalloc.start()
    try:
        image = load_image(data, name="big.dcm")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    frame_bytes = side * side * 2
    assert peak < 3 * frame_bytes, f"peak {peak / 1e6:.0f} MB for a {frame_bytes / 1e6:.0f} MB frame"
    h, w = image.pixels.shape
    assert max(h, w) <= MAX_SIDE and image.pixels.dtype == np.float32
    assert image.raw is not None and image.raw.shape == (h, w)
    assert image.meta["size"] == f"{side}x{side}" and image.meta["decoded_size"] == f"{w}x{h}"


def test_a_downscaled_dicom_is_the_block_mean_of_the_full_size_one():
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 4096, (MAX_SIDE + 6, 300), dtype=np.uint16)
    data = _dicom(stored, RescaleSlope=2, RescaleIntercept=-1000, WindowCenter=3100,
                  WindowWidth=8400)  # the whole range [-1000, 7190]: no clipping
    full, small = load_image(data, max_side=None), load_image(data)
    assert full.raw.shape == stored.shape and small.raw.shape == ((MAX_SIDE + 6) // 2, 150)
    h, w = small.raw.shape
    blocks = full.raw[: 2 * h, : 2 * w].reshape(h, 2, w, 2).mean(axis=(1, 3))
    assert np.abs(small.raw - blocks).max() <= 1.0  # stored values are rounded after the mean
    assert np.abs(small.pixels - full.pixels[: 2 * h, : 2 * w].reshape(h, 2, w, 2).mean(axis=(1, 3))).max() < 2e-4
    assert small.window == full.window


@pytest.mark.slow
def test_two_64_mp_uploads_at_once_stay_under_600_mb():
    from benchmarks.memory import measure

    result = measure("RGB")
    assert result["growth_mb"] < 600, result


@pytest.mark.slow
def test_two_64_mp_dicom_uploads_at_once_stay_under_600_mb():
    """Before: +5.3 GB (each DICOM went through float64 at full size, two at a time)."""
    from benchmarks.memory import measure

    result = measure("DICOM")
    assert result["growth_mb"] < 600, result
