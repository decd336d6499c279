"""A workspace the disk cannot hold, or damaged JSON files in it, on every page (AppTest): one
line naming the folder or file, never a traceback, and the file left as it was (issue 28)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.page_helpers import APP, copy_workspace, open_page, unescape

PAGES = ("pages/home.py", "pages/train.py", "pages/search.py", "pages/map.py", "pages/duplicates.py")
LONG = "w" * 300  # over the 255 bytes a file name may have


def _lines(at) -> list[str]:
    """Every error, warning and caption the page shows, main area and sidebar, as read."""
    shown = [*at.error, *at.warning, *at.caption, *at.sidebar.error, *at.sidebar.warning,
             *at.sidebar.caption]
    return [unescape(str(e.value)) for e in shown]


def _check(at, page: str, words: str) -> None:
    assert not at.exception, (page, [e.message for e in at.exception])
    named = [line for line in _lines(at) if words in line]
    assert named and all("\n" not in line for line in named), (page, _lines(at))


@pytest.fixture
def workspace(tiny_workspace, tmp_path, monkeypatch):
    """A private copy of the tiny workspace, the app's default, with room for long names."""
    root = tmp_path / "ws"
    run = copy_workspace(tiny_workspace.root, tiny_workspace.run_dir.name, root)
    monkeypatch.setenv("CXR_WORKSPACE", str(root))
    monkeypatch.setenv("CXR_ALLOWED_ROOTS", str(tmp_path))
    return root, run


def test_a_300_character_workspace_in_the_url_is_named_on_every_page(workspace, tmp_path):
    long = tmp_path / LONG
    at = open_page("pages/home.py")
    for page in PAGES:
        del at.session_state["cxr_workspace"]  # a fresh session opened from a link
        at.query_params["workspace"] = str(long)
        at.switch_page(page).run()
        _check(at, page, "file name too long")
        assert any(str(tmp_path / "www") in line for line in _lines(at)), (page, _lines(at))


def test_a_300_character_workspace_typed_in_is_named_on_every_page(workspace, tmp_path):
    root, _ = workspace
    at = open_page("pages/home.py")
    for page in PAGES:
        at.switch_page(page).run()
        box = next(t for t in at.sidebar.text_input if t.label == "Workspace folder")
        box.set_value(str(tmp_path / LONG)).run()
        _check(at, page, "file name too long")
        assert at.session_state["cxr_workspace"] == str(root)  # still the old one


def test_a_300_character_dataset_folder_on_home_is_one_line(workspace, tmp_path):
    at = open_page("pages/home.py")
    folder = next(t for t in at.text_input if t.label == "Folder on this server")
    folder.set_value(str(tmp_path / LONG))
    next(b for b in at.button if b.label == "Open folder").click().run()
    assert not at.exception
    errors = [unescape(e.value) for e in at.error]
    assert len(errors) == 1 and "File name too long" in errors[0] and "\n" not in errors[0], errors


@pytest.mark.parametrize("name, content", [
    ("status.json", "[1, 2]"), ("status.json", '{"state": "running"'), ("config.json", "[1, 2]"),
    ("config.json", "garbage{"), ("workspace.json", "[1, 2]"), ("workspace.json", "garbage{"),
])
def test_a_damaged_json_file_is_named_on_every_page(workspace, name, content):
    root, run = workspace
    path = root / name if name == "workspace.json" else run / name
    path.write_text(content, encoding="utf-8")
    at = AppTest.from_file(APP, default_timeout=120).run()
    _check(at, PAGES[0], str(path))
    for page in PAGES[1:]:
        at.switch_page(page).run()
        _check(at, page, str(path))
    assert path.read_text(encoding="utf-8") == content  # left for the user to restore


@pytest.mark.parametrize("damage, words", [("nan", "embeddings.npy holds NaN"),
                                           ("nul", "items.csv is damaged: a NUL byte in row 1")])
def test_nan_embeddings_or_a_nul_in_items_csv_are_named_where_they_are_read(workspace, damage, words):
    import numpy as np

    from core.run_folder import RunPaths

    _, run = workspace
    paths = RunPaths(run)
    if damage == "nan":
        vectors = np.load(paths.embeddings)
        vectors[3] = np.nan
        np.save(paths.embeddings, vectors)
    else:
        rows = paths.items.read_text(encoding="utf-8").splitlines(True)
        rows[1] = rows[1].replace("/", "/\0", 1)
        paths.items.write_text("".join(rows), encoding="utf-8")
    at = AppTest.from_file(APP, default_timeout=120).run()
    for page in ("pages/search.py", "pages/map.py"):
        at.switch_page(page).run()
        _check(at, page, words)
        assert any(f"embed --run {run}" in line for line in _lines(at)), (page, _lines(at))
