"""Zip entries the disk cannot hold refuse the upload in one line naming the entry, before
anything is written: a file that is also a folder, thousands of nested folders, a name over
the file system's 255 bytes (issue 28, item 9). The cases are tests/bad_inputs.BAD_ZIPS."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from core.data.upload import MAX_DEPTH, UploadError, extract_dataset_zip
from tests import bad_inputs


@pytest.mark.parametrize("case", bad_inputs.BAD_ZIPS)
def test_unwritable_names_refuse_the_archive_in_one_line(tmp_path: Path, case: str) -> None:
    words = bad_inputs.BAD_ZIPS[case][1]
    with pytest.raises(UploadError) as e:
        extract_dataset_zip(io.BytesIO(bad_inputs.bad_zip(case)), tmp_path / "up" / "ds")
    message = str(e.value)
    assert words in message and "\n" not in message and len(message) < 300, message
    up = tmp_path / "up"
    assert not up.exists() or not any(up.iterdir())  # nothing written, no temp folder left


def test_deep_but_allowed_folders_and_255_byte_names_unpack(tmp_path: Path) -> None:
    deep = "/".join(["d"] * MAX_DEPTH) + "/x.png"
    longest = "Normal/" + "a" * 251 + ".png"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in [("COVID/c.png", b"0"), (deep, b"1"), (longest, b"2")]:
            z.writestr(name, data)
    buf.seek(0)
    out = extract_dataset_zip(buf, tmp_path / "ds")
    assert out.n_files == 3 and (out.root / longest).read_bytes() == b"2"
