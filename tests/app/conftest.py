"""Fixtures of the app's browser walks (tests/app/test_browser*.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where a walk's screenshots go: $CXR_SCREENSHOTS, else a temporary folder."""
    folder = Path(os.environ.get("CXR_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
