"""Where a report may be written: checked before any run file is read (no torch loaded), so a
mistyped --out answers at once."""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import UserError


class ReportError(UserError):
    """The report cannot be written where asked (one line)."""


def check_output(out: str | Path) -> Path:
    """`out` if a report can be written there: its folder exists and is writable, and it is
    not a folder itself.

    Raises:
        ReportError: one line naming the file and what is wrong.
    """
    path = Path(out)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ReportError(f"cannot write the report to {path}: it is a folder; give a file name such as report.html")
    if folder.exists() and not folder.is_dir():
        raise ReportError(f"cannot write the report to {path}: {folder} is a file, not a folder")
    if not folder.is_dir():
        raise ReportError(f"cannot write the report to {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ReportError(f"cannot write the report to {path}: the folder {folder} is not writable")
    return path
