"""Names from users' folders, uploads and DICOM tags show literally on every page.

Streamlit never renders raw HTML without unsafe_allow_html (test_security checks nobody
passes it), but Markdown elements would still turn `**x**` bold or `[x](javascript:...)` into
a link. So a user's text must appear only in plain-text elements (st.text, st.code, tables)
or Markdown-escaped; the raw fragments below must never sit in a Markdown element.
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests import bad_inputs as bi
from tests.page_helpers import APP

WEIRD = ("<img src=x onerror=alert(1)>.png", "**bold** [link](javascript:alert(1)).png")
FOLDER = "**chest** _data_ <img src=x>"
RAW = ("<img src=x onerror=alert(1)>", "**bold**", "[link](javascript:alert(1))", "**chest**",
       "<img src=x>")
MARKDOWN_KINDS = ("markdown", "caption", "error", "warning", "info", "success", "title", "header",
                  "subheader")


@pytest.fixture(scope="module")
def _weird_ws(_tiny_workspace_built, tmp_path_factory):
    """A workspace whose dataset folder and two files carry HTML and Markdown in their names.

    The two files are copies of one image, so they are each other's nearest neighbours and a
    duplicate pair. One tiny epoch is enough: only the names matter here.
    """
    from core.config import make_run_config
    from core.duplicates.search import run_duplicates
    from core.embed.projection import cached_projection
    from core.runs.pipeline import train_run
    from core.runs.workspace import Workspace

    root = tmp_path_factory.mktemp("weird") / "ws"
    data = root / "datasets" / FOLDER
    shutil.copytree(_tiny_workspace_built.dataset, data, ignore=shutil.ignore_patterns("manifest.csv"))
    source = sorted((data / "Normal").glob("*.png"))[0]
    for name in WEIRD:
        shutil.copy(source, data / "Normal" / name)
    run = root / "runs" / "weird"
    train_run(make_run_config(str(data), "tiny", epochs=1), run)
    Workspace(root).update(dataset=str(data), synthetic=True, active_run=str(run))
    run_duplicates(run, "auto")
    cached_projection(run, "tsne", 30, 0, "all")  # the Map draws it instead of computing it
    return root


@pytest.fixture
def weird_ws(_weird_ws, monkeypatch):
    monkeypatch.setenv("CXR_WORKSPACE", str(_weird_ws))
    return _weird_ws


def _page(page: str, reviewer: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    if page != "pages/home.py":
        at.switch_page(page).run()
    if reviewer:
        at.sidebar.text_input(key="dup_reviewer").input(reviewer).run()
    assert not at.exception, at.exception
    return at


def _markdown_texts(at: AppTest) -> list[str]:
    texts = [str(e.value) for kind in MARKDOWN_KINDS for e in at.get(kind)]
    return texts + [b.label for b in at.button] + [m.label for m in at.metric]


def _plain_texts(at: AppTest) -> str:
    parts = [t.value for t in at.text] + [c.value for c in at.code] + [m.value for m in at.metric]
    parts += [d.value.to_string() for d in at.dataframe]
    return "\n".join(str(p) for p in parts)


def _nothing_raw_in_markdown(at: AppTest) -> None:
    assert not at.exception, at.exception
    for text in _markdown_texts(at):
        for raw in RAW:
            assert raw not in text, f"{raw!r} rendered as Markdown in {text!r}"


def test_home_and_train_show_the_folder_name_literally(weird_ws):
    at = _page("pages/home.py")
    _nothing_raw_in_markdown(at)
    assert {m.label: m.value for m in at.metric}["Dataset (SYNTHETIC)"] == FOLDER
    assert any("\\*\\*chest\\*\\*" in c.value for c in at.caption)  # escaped, so shown as typed
    at = _page("pages/train.py")
    _nothing_raw_in_markdown(at)


def test_search_shows_file_names_as_text(weird_ws):
    at = _page("pages/search.py")
    at.radio(key="search_source").set_value("Pick from the dataset").run()
    at.selectbox(key="search_pick_path").set_value(f"Normal/{WEIRD[0]}").run()
    _nothing_raw_in_markdown(at)
    shown = _plain_texts(at)
    assert f"Normal/{WEIRD[0]}" in shown and WEIRD[1] in shown  # the query and its twin


def test_search_upload_names_and_dicom_tags_show_as_text(weird_ws, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns: these are not valid CS values
        ds = bi._dicom(np.arange(64, dtype=np.uint16).reshape(8, 8) * 60, bits=12)
        ds.Modality, ds.ViewPosition = "<img src=x onerror=alert(1)>", "**bold**"
        dicom = bi._save_dicom(ds, tmp_path / "tags.dcm").read_bytes()
    at = _page("pages/search.py")
    at.file_uploader(key="search_upload").set_value((WEIRD[1].replace(".png", ".dcm"), dicom,
                                                     "application/dicom")).run()
    _nothing_raw_in_markdown(at)
    shown = _plain_texts(at)
    assert "Modality: <img src=x onerror=alert(1)>\nView: **bold**" in shown
    assert WEIRD[1].replace(".png", ".dcm") in shown
    at.file_uploader(key="search_upload").set_value((WEIRD[1], b"not an image at all", "image/png")).run()
    _nothing_raw_in_markdown(at)
    assert len(at.error) == 1 and "bold" in at.error[0].value


def test_map_shows_a_found_file_as_text(weird_ws):
    at = _page("pages/map.py")
    at.text_input(key="map_find").set_value("onerror").run()
    _nothing_raw_in_markdown(at)
    assert f"Normal/{WEIRD[0]}" in _plain_texts(at)


def test_duplicates_shows_the_pair_names_as_text(weird_ws):
    at = _page("pages/duplicates.py", reviewer="**ann** <img src=x>")
    _nothing_raw_in_markdown(at)
    assert any(f"Normal/{name}" in _plain_texts(at) for name in WEIRD)
