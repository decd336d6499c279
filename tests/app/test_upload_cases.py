"""Every bad and unusual image of tests/bad_inputs as an upload on the Search page (AppTest).

Valid-but-unusual files (16-bit, RGBA, CMYK, palette, EXIF-rotated, WebP, multi-frame DICOM, ...)
are answered with results; bad ones (zero bytes, truncated, text renamed .png, bombs, DICOM
without pixels or with an undecodable transfer syntax, ...) get one error line and no results.
One app session takes every upload in turn, as a user trying file after file would.
"""

from __future__ import annotations

import re

import pytest

from tests import bad_inputs
from tests.page_helpers import open_page, unescape

RESULT = re.compile(r"^#\d+ · cosine -?\d\.\d{3}( · .*)?$")


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return bad_inputs.build_all(tmp_path_factory.mktemp("upload_cases"))


def _results(at) -> int:
    return sum(1 for t in at.text if RESULT.match(t.value.split("\n")[0]))


def _upload(at, path):
    at.file_uploader(key="search_upload").set_value((path.name, path.read_bytes(), "")).run()
    assert not at.exception, (path.name, at.exception)
    return at


def test_every_valid_unusual_upload_is_answered(tiny_workspace, cases):
    at = open_page("pages/search.py")
    for case in bad_inputs.VALID_CASES:
        _upload(at, cases[case])
        assert not at.error, (case, [e.value for e in at.error])
        assert _results(at) > 0, case


def test_every_bad_upload_gets_one_line_and_no_results(tiny_workspace, cases):
    at = open_page("pages/search.py")
    for case in bad_inputs.BAD_CASES:
        _upload(at, cases[case])
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and "\n" not in errors[0], (case, errors)
        assert _results(at) == 0, case


def test_every_unwritable_zip_on_home_gets_one_line_naming_the_entry(tmp_path, monkeypatch):
    """Home > Upload a zip: a file that is also a folder, 2,000 nested folders, 300-character
    names. One error line each, no traceback, nothing left in the workspace."""
    root = tmp_path / "ws"
    monkeypatch.setenv("CXR_WORKSPACE", str(root))
    at = open_page("pages/home.py")
    for case, (_, words) in bad_inputs.BAD_ZIPS.items():
        at.file_uploader[0].set_value((f"{case}.zip", bad_inputs.bad_zip(case), "application/zip")).run()
        next(b for b in at.button if b.label.startswith("Unpack")).click().run()
        assert not at.exception, (case, at.exception)
        errors = [unescape(e.value) for e in at.error]
        assert len(errors) == 1 and "\n" not in errors[0] and words in errors[0], (case, errors)
        assert not any((root / "datasets").glob("*")), case
