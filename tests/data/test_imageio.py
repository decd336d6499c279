"""Valid but unusual images are read correctly, with hand-computed expected values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from core.data.imageio import (
    ImageReadError,
    LoadedImage,
    Window,
    apply_window,
    is_supported,
    load_image,
    read_gray,
    to_uint8,
)
from tests import bad_inputs as bi

LUMA = np.array([0.299, 0.587, 0.114])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return bi.build_all(tmp_path_factory.mktemp("cases"))


@pytest.mark.parametrize("case", list(bi.VALID_CASES))
def test_every_valid_case_gives_finite_2d_float32_in_unit_range(files, case):
    image = load_image(files[case])
    assert isinstance(image, LoadedImage)
    assert image.pixels.dtype == np.float32 and image.pixels.ndim == 2
    assert np.isfinite(image.pixels).all()
    assert image.pixels.min() >= 0.0 and image.pixels.max() <= 1.0
    assert all(v for v in image.meta.values()), "absent tags must be left out, not empty"


def test_png16_keeps_full_range(files):
    pixels = read_gray(files["png16"])
    stored = np.concatenate([np.linspace(0, 65535, 62).astype(np.uint16), [1000, 1001]])
    np.testing.assert_allclose(pixels.ravel(), stored / 65535.0, atol=1e-7)
    assert pixels.max() == 1.0 and pixels.min() == 0.0
    assert pixels.ravel()[62] != pixels.ravel()[63]  # 1000 vs 1001: not collapsed to 8 bits
    assert load_image(files["png16"]).meta["mode"] == "I;16"


def test_tiff16_divides_by_65535(files):
    np.testing.assert_allclose(read_gray(files["tiff16"]), [[0, 30000 / 65535], [1, 30000 / 65535]],
                               atol=1e-7)


def test_rgba_is_composited_on_black(files):
    pixels = read_gray(files["rgba_png"])
    np.testing.assert_allclose(pixels[:, :4], 200 / 255, atol=1e-6)  # opaque: luma of gray 200
    np.testing.assert_allclose(pixels[:, 4:], 0.0, atol=1e-7)  # transparent -> black


def test_gray_alpha_is_gray_times_alpha(files):
    np.testing.assert_allclose(read_gray(files["la_png"]), 100 / 255 * 128 / 255, atol=1e-6)


def test_palette_uses_luma_of_palette_colours(files):
    pixels = read_gray(files["palette_png"])
    quadrants = [pixels[0, 0], pixels[0, 7], pixels[7, 0], pixels[7, 7]]  # black red green white
    np.testing.assert_allclose(quadrants, [0.0, LUMA[0], LUMA[1], 1.0], atol=1e-6)


def test_cmyk_jpeg_ink_is_dark(files):
    pixels = read_gray(files["cmyk_jpeg"])
    assert pixels[:, :6].mean() < 0.05 and pixels[:, 10:].mean() > 0.95


def test_exif_orientation_is_applied(files):
    image = load_image(files["exif_rotated_jpeg"])
    assert image.pixels.shape == (48, 24)  # stored 24 x 48 (H x W), rotated 90 degrees clockwise
    assert image.pixels[:8, -8:].mean() > 0.9  # stored top-left block is now top-right
    assert image.pixels[:8, :8].mean() < 0.1
    assert image.meta["exif_orientation"] == "6" and image.meta["size"] == "24x48"


def test_webp_bmp_and_odd_names_match_the_source_pixels(files):
    expected = bi._gray8() / 255.0
    for case in ("webp", "bmp", "spaces_name", "unicode_name"):
        np.testing.assert_allclose(read_gray(files[case]), expected, atol=1e-5, err_msg=case)


def test_animated_gif_gives_first_frame(files):
    image = load_image(files["animated_gif"])
    assert image.pixels[:, :4].mean() > 0.9 and image.pixels[:, 4:].mean() < 0.1
    assert image.meta["frames"] == "3" and image.source_format == "gif"


def test_dicom_rescale_then_first_window_by_hand(files):
    image = load_image(files["dicom_rescale_window"])
    np.testing.assert_array_equal(image.raw, bi.RESCALE_STORED * 2.0 - 1000.0)
    assert image.window == Window(-600.0, 1000.0)
    # stored 0, 100, 200, 300 -> raw -1000, -800, -600, -400 -> (raw + 600) / 1000 + 0.5
    np.testing.assert_allclose(image.pixels[0], [0.1, 0.3, 0.5, 0.7], atol=1e-6)
    assert image.pixels[1, 1] == 1.0  # raw 0 is above the window
    assert image.source_format == "dicom"
    assert image.meta["Modality"] == "DX" and image.meta["BitsStored"] == "12"


def test_dicom_window_agrees_with_pydicom(files):
    ds = pydicom.dcmread(files["dicom_rescale_window"])
    ours = load_image(files["dicom_rescale_window"]).pixels
    theirs = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)
    lo, hi = -1000.0, 4095 * 2.0 - 1000.0  # pydicom's output range after rescale
    # LINEAR vs LINEAR_EXACT differ by at most ~1/width.
    np.testing.assert_allclose(ours, (theirs - lo) / (hi - lo), atol=2 / 1000)


def test_monochrome1_is_inverted_bone_stays_bright(files):
    image = load_image(files["dicom_mono1"])
    bone, air = image.pixels[3, 3], image.pixels[0, 0]
    assert bone == pytest.approx(1 - ((100 - 1500) / 3000 + 0.5), abs=1e-6)
    assert air == pytest.approx(0.0, abs=1e-6)
    assert image.meta["PhotometricInterpretation"] == "MONOCHROME1"


def test_multiframe_dicom_gives_first_frame(files):
    image = load_image(files["dicom_multiframe"])
    assert image.pixels.shape == (6, 8)
    assert image.pixels[:, :4].mean() > 0.9 and image.pixels[:, 4:].mean() < 0.1
    assert image.meta["NumberOfFrames"] == "3"


def test_dicom_without_window_uses_percentile_window(files):
    image = load_image(files["dicom_no_window"])
    lo, hi = np.percentile(np.arange(100) * 40.0, [0.5, 99.5])
    assert image.window.center == pytest.approx((lo + hi) / 2)
    assert image.window.width == pytest.approx(hi - lo)
    np.testing.assert_allclose(image.pixels, apply_window(image.raw, image.window), atol=0)
    assert "NumberOfFrames" not in image.meta


def test_dicom_voi_lut_sequence_is_applied(files):
    image = load_image(files["dicom_voi_lut"])
    assert image.window is None
    np.testing.assert_allclose(image.pixels.ravel(), (255 - np.arange(256)) / 255.0, atol=1e-6)


def test_encapsulated_jpeg_dicom_decodes(files):
    image = load_image(files["dicom_jpeg_baseline"])
    assert image.meta["TransferSyntax"].startswith("JPEG Baseline")
    assert np.abs(image.raw - bi._gray8()).mean() < 3  # lossy, close to the source


def test_dicom_without_preamble_is_read(files):
    image = load_image(files["dicom_no_preamble"])
    np.testing.assert_array_equal(image.raw, np.arange(16).reshape(4, 4))


@pytest.mark.parametrize("case", ["png16", "exif_rotated_jpeg", "dicom_mono1", "unicode_dicom"])
def test_bytes_upload_equals_path(files, case):
    from_path = load_image(files[case])
    data = files[case].read_bytes()
    for name in (files[case].name, None):  # DICOM is found by content without a name too
        from_bytes = load_image(data, name=name)
        np.testing.assert_array_equal(from_bytes.pixels, from_path.pixels)
        assert from_bytes.meta == from_path.meta


def test_png_content_with_a_dicom_name_is_still_read(files, tmp_path):
    path = tmp_path / "mislabelled.dcm"
    path.write_bytes(files["bmp"].read_bytes())
    assert load_image(path).source_format == "bmp"


def test_max_pixels_is_respected(files):
    with pytest.raises(ImageReadError, match="over the limit of 100 pixels"):
        load_image(files["bmp"], max_pixels=100)
    with pytest.raises(ImageReadError, match="over the limit of 10 pixels"):
        load_image(files["dicom_mono1"], max_pixels=10)
    assert load_image(files["bmp"], max_pixels=24 * 32).pixels.shape == (24, 32)


def test_apply_window_by_hand():
    raw = np.array([[0.0, 50.0, 100.0, 150.0, 200.0]])
    window = Window(center=100.0, width=100.0)
    np.testing.assert_allclose(apply_window(raw, window), [[0, 0, 0.5, 1, 1]])
    np.testing.assert_allclose(apply_window(raw, window, invert=True), [[1, 1, 0.5, 0, 0]])
    sigmoid = apply_window(raw, Window(100.0, 100.0, "SIGMOID"))
    assert sigmoid[0, 2] == pytest.approx(0.5) and np.all(np.diff(sigmoid[0]) > 0)
    assert apply_window(raw, window).dtype == np.float32
    with pytest.raises(ValueError):
        apply_window(raw, Window(100.0, 0.0))


def test_to_uint8_rounds_and_clips():
    pixels = np.array([[0.0, 0.5, 1.0, np.nan, 1.2, -0.1, 1 / 255]], np.float32)
    np.testing.assert_array_equal(to_uint8(pixels), [[0, 128, 255, 0, 255, 0, 1]])
    assert to_uint8(pixels).dtype == np.uint8


def test_is_supported(tmp_path, files):
    assert is_supported("a.PNG") and is_supported("b.jpeg") and is_supported("c.dcm")
    assert not is_supported("notes.txt") and not is_supported("missing")
    uid_named = tmp_path / "1.2.840.113619.2.55"
    uid_named.write_bytes(files["dicom_mono1"].read_bytes())
    plain = tmp_path / "IM0001"
    plain.write_bytes(files["dicom_mono1"].read_bytes())
    assert is_supported(uid_named) and is_supported(plain)
    assert load_image(plain).source_format == "dicom"
