"""Bad files raise ImageReadError with one line that names the file, and nothing else escapes."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import ImageFile

import core.data.dicom
from core.data.imageio import ImageReadError, load_image
from tests import bad_inputs as bi

# The reason each bad case must give (a fragment of the message).
EXPECTED_REASON = {
    "zero_byte": "empty",
    "truncated_png": "PNG is truncated or corrupt",
    "truncated_jpeg": "JPEG is truncated or corrupt",
    "text_as_png": "contains text",
    "pdf_as_jpg": "unknown or unsupported image format",
    "bomb_png": "decompression bomb",
    "over_limit_png": "9000x8000 = 72,000,000 pixels",
    "huge_dims_png": "decompression bomb",
    "dicom_no_pixels": "has no pixel data",
    "dicom_jpegls": "JPEG-LS",
    "dicom_j2k_bogus": "JPEG 2000",
    "dicom_huge_dims": "60000x60000",
    "dicom_short_pixels": "could not be decoded",
    "truncated_dicom": "no pixel data",
    "text_as_dcm": "not a DICOM file",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return bi.build_all(tmp_path_factory.mktemp("cases"))


def test_every_bad_case_has_an_expected_reason():
    assert set(EXPECTED_REASON) == set(bi.BAD_CASES)


@pytest.mark.parametrize("case", list(bi.BAD_CASES))
def test_bad_file_raises_one_line_naming_the_file(files, case):
    path = files[case]
    with pytest.raises(ImageReadError) as info:
        load_image(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert EXPECTED_REASON[case] in message
    assert "\n" not in message and len(message) < 400
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("case", list(bi.BAD_CASES))
def test_bad_upload_names_the_upload(files, case):
    data = files[case].read_bytes()
    with pytest.raises(ImageReadError, match=r"^scan 1 ñ\.\w+: ") as info:
        load_image(data, name="scan 1 ñ" + files[case].suffix)
    assert EXPECTED_REASON[case] in str(info.value)
    with pytest.raises(ImageReadError, match=r"^<upload>: "):
        load_image(data)


def test_unicode_and_spaces_in_a_bad_file_name(tmp_path, files):
    path = tmp_path / "röntgen kaputt 胸部.png"
    path.write_bytes(files["truncated_png"].read_bytes())
    with pytest.raises(ImageReadError, match="röntgen kaputt 胸部.png: PNG is truncated"):
        load_image(path)


def test_error_survives_pickling_and_one_argument_rebuild():
    error = ImageReadError("a.png", "file is empty (0 bytes)")
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == "a.png: file is empty (0 bytes)" and copy.reason == error.reason
    assert str(ImageReadError(str(error))) == str(error)  # torch's ExceptionWrapper does this


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageReadError, match="cannot open file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageReadError, match="is not a file"):
        load_image(tmp_path)


def test_size_is_checked_before_pixels_are_decoded(files, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", fail)
    monkeypatch.setattr(core.data.dicom, "pixel_array", fail)
    for case in ("over_limit_png", "bomb_png", "huge_dims_png", "dicom_huge_dims"):
        with pytest.raises(ImageReadError, match="decompression bomb"):
            load_image(files[case])


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about the damage it reads
def test_corrupted_copies_of_valid_files_never_raise_anything_else(files):
    """Truncations and random byte flips: either a clean image or ImageReadError."""
    rng = np.random.default_rng(0)
    outcomes = {"ok": 0, "error": 0}
    for case in bi.VALID_CASES:
        data = files[case].read_bytes()
        variants = [data[:n] for n in np.linspace(1, len(data) - 1, 12).astype(int)]
        for _ in range(12):
            flipped = np.frombuffer(data, np.uint8).copy()
            flipped[rng.integers(0, len(data), 4)] = rng.integers(0, 256, 4)
            variants.append(flipped.tobytes())
        for variant in variants:
            try:
                pixels = load_image(variant, name=files[case].name).pixels
            except ImageReadError as e:
                assert "\n" not in str(e)
                outcomes["error"] += 1
            else:
                assert pixels.ndim == 2 and np.isfinite(pixels).all()
                assert 0.0 <= pixels.min() and pixels.max() <= 1.0
                outcomes["ok"] += 1
    assert outcomes["error"] > 0 and outcomes["ok"] > 0
