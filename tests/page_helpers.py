"""Helpers for the Map and Search page tests: open a page, copy the tiny workspace."""

from __future__ import annotations

import shutil
from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.files import atomic_write_json, read_json

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


def open_page(page: str) -> AppTest:
    """Run the app from its entry point, switch to `page`, and check nothing raised."""
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def copy_workspace(src_root: Path, run_name: str, dest: Path) -> Path:
    """A private copy of a workspace (datasets stay shared), its active run pointing inside it.

    Returns:
        The copied run folder, free to receive files (duplicates.json, ...) in one test.
    """
    shutil.copytree(src_root, dest, ignore=shutil.ignore_patterns("datasets", "thumbnails"))
    settings = read_json(src_root / "workspace.json", default={}) or {}
    run = dest / "runs" / run_name
    atomic_write_json(dest / "workspace.json", {**settings, "active_run": str(run)})
    return run


def unescape(text: str) -> str:
    """Undo pages._images_ui.escape_markdown (what the user reads)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        out.append(text[i])
        i += 1
    return "".join(out)
