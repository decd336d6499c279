"""Issue 28 items 3 and 4: every page opens a run's films through one allowed-roots check.

Films `add` took from a folder outside the dataset are stored with absolute paths. Inside an
allowed root (the workspace, the dataset, $CXR_ALLOWED_ROOTS) they are shown on Search and
Duplicates like any other film; outside, every picture of them (the Why panel's included) is
refused with one line naming the file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.data import dataset_file, placeholder_png
from core.duplicates.search import run_duplicates
from core.embed.embeddings import Embeddings
from tests.page_helpers import APP, copy_workspace, unescape


@pytest.fixture(scope="module")
def _searched(_tiny_workspace_built, tmp_path_factory):
    """A copy of the tiny workspace whose run holds a duplicate search (cosine 0.9)."""
    src = _tiny_workspace_built
    run = copy_workspace(src.root, src.run_dir.name, tmp_path_factory.mktemp("films") / "ws")
    run_duplicates(run, 0.9)
    return run


def _workspace_with_moved_films(searched: Path, tmp_path: Path, folder: Path) -> Path:
    """A private copy of `searched` whose pairs name their second film by an absolute path in
    `folder` (a copy of the dataset's file there), as `add` stores films from another folder."""
    run = copy_workspace(searched.parent.parent, searched.name, tmp_path / "ws")
    doc = json.loads((run / "duplicates.json").read_text())
    data = Path(doc["data"])
    folder.mkdir(parents=True, exist_ok=True)
    for p in doc["pairs"]:
        moved = folder / p["b"].replace("/", "__")
        shutil.copyfile(data / p["b"], moved)
        p["b"] = str(moved)
    (run / "duplicates.json").write_text(json.dumps(doc))
    return run


def _duplicates_page(ws_root: Path, monkeypatch, allowed: str) -> AppTest:
    monkeypatch.setenv("CXR_WORKSPACE", str(ws_root))
    monkeypatch.setenv("CXR_ALLOWED_ROOTS", allowed)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/duplicates.py").run()
    at.sidebar.text_input(key="dup_reviewer").input("ann").run()
    assert not at.exception, at.exception
    return at


def _shown_pair(at: AppTest) -> tuple[str, str]:
    table = next(d.value for d in at.dataframe if list(d.value.columns)[:2] == ["image", "file"])
    return tuple(table["file"])


def test_a_film_outside_the_allowed_roots_is_refused_by_every_picture(_searched, tmp_path, monkeypatch):
    """Item 3: the main panel refused such a film, but the Why panel's overlay, difference and
    matches showed it (it opened `data_root / p.b` unchecked)."""
    outside = tmp_path / "outside"
    run = _workspace_with_moved_films(_searched, tmp_path, outside)
    at = _duplicates_page(run.parent.parent, monkeypatch, allowed="")  # the workspace only
    _, b = _shown_pair(at)
    assert Path(b).parent == outside
    assert len(at.get("image")) == 0, "no picture of a film outside the allowed roots"
    errors = [unescape(e.value) for e in at.error]
    assert errors and all("\n" not in e for e in errors), errors
    assert any(f"{b}: is outside the dataset folder and the folders this app may open" in e
               for e in errors), errors
    why = [e for e in errors if e.startswith("Cannot align this pair")]
    assert why and b in why[0], errors


def test_a_film_added_from_an_allowed_folder_is_shown_and_aligned(_searched, tmp_path, monkeypatch):
    """Item 4: "An image of this pair cannot be read" for every pair `add` flagged."""
    arrivals = tmp_path / "arrivals"
    run = _workspace_with_moved_films(_searched, tmp_path, arrivals)
    at = _duplicates_page(run.parent.parent, monkeypatch, allowed=str(arrivals))
    _, b = _shown_pair(at)
    assert Path(b).parent == arrivals
    assert not [e.value for e in at.error]
    assert len(at.get("image")) >= 3  # both films, and the Why panel's pictures


def test_the_grid_shows_added_films_and_refuses_outside_ones(_searched, tmp_path, monkeypatch):
    from pages._images_ui import cached_thumbnail

    arrivals = tmp_path / "arrivals"
    run = _workspace_with_moved_films(_searched, tmp_path, arrivals)
    film = next(arrivals.iterdir())
    data = json.loads((run / "duplicates.json").read_text())["data"]
    grey = placeholder_png(64)
    assert cached_thumbnail(data, str(film), str(run / "thumbnails"), 64, (arrivals,)) != grey
    assert cached_thumbnail(data, str(film), str(run / "thumbnails"), 64, ()) == grey
    at = _duplicates_page(run.parent.parent, monkeypatch, allowed=str(arrivals))
    at.toggle(key="dup_grid").set_value(True).run()
    assert not at.exception, at.exception


# ---- Search: films `add` brought in from another folder ---------------------------------------

@pytest.fixture(scope="module")
def _added(_tiny_workspace_built, tmp_path_factory):
    """A copy of the tiny workspace and run with two films added from a folder outside the
    dataset (one a mirrored dataset film, so it is a new image)."""
    from PIL import Image

    from core.runs.ingest import add_files

    src = _tiny_workspace_built
    base = tmp_path_factory.mktemp("added")
    run = copy_workspace(src.root, src.run_dir.name, base / "ws")
    arrivals = base / "arrivals"
    arrivals.mkdir()
    emb = Embeddings.load(run)
    for n, rel in enumerate(emb.paths[:2]):
        Image.open(src.dataset / rel).transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(arrivals / f"new{n}.png")
    result = add_files(run, arrivals)
    assert result.added == 2, result
    return run, arrivals


def _search_page(run: Path, monkeypatch, allowed: str) -> AppTest:
    monkeypatch.setenv("CXR_WORKSPACE", str(run.parent.parent))
    monkeypatch.setenv("CXR_ALLOWED_ROOTS", allowed)
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/search.py").run()
    assert not at.exception, at.exception
    return at


def test_an_added_film_is_picked_searched_and_compared(_added, monkeypatch):
    """Item 4: picking an added film said "is outside the dataset folder"; so did Compare."""
    run, arrivals = _added
    film = str(arrivals / "new0.png")
    assert film in Embeddings.load(run).paths
    at = _search_page(run, monkeypatch, allowed=str(arrivals))
    at.radio(key="search_source").set_value("Pick from the dataset").run()
    at.selectbox(key="search_pick_path").set_value(film).run()
    assert not at.exception, at.exception
    assert not [e.value for e in at.error]
    # the other added film, uploaded: it finds itself first, and Compare shows it
    data = (arrivals / "new1.png").read_bytes()
    at.radio(key="search_source").set_value("Upload an image").run()
    at.file_uploader(key="search_upload").set_value(("new1.png", data, "image/png")).run()
    assert not at.exception, at.exception
    assert not [e.value for e in at.error]
    compare = [s for s in at.selectbox if s.label == "Compare the query with result"][0]
    assert compare.value == 1 and str(arrivals / "new1.png") in "\n".join(t.value for t in at.text)


def test_an_added_film_outside_the_allowed_roots_is_named_and_refused(_added, monkeypatch):
    run, arrivals = _added
    at = _search_page(run, monkeypatch, allowed="")
    at.file_uploader(key="search_upload").set_value(
        ("new1.png", (arrivals / "new1.png").read_bytes(), "image/png")).run()
    assert not at.exception, at.exception
    errors = [unescape(e.value) for e in at.error]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    assert errors[0].startswith(f"{arrivals / 'new1.png'}: is outside the dataset folder and the folders")


def test_dataset_file_is_the_one_check(tmp_path):
    data, other, elsewhere = tmp_path / "data", tmp_path / "other", tmp_path / "elsewhere"
    for d in (data, other, elsewhere):
        d.mkdir()
        (d / "x.png").write_bytes(b"")
    assert dataset_file(data, "x.png") == (data / "x.png").resolve()
    assert dataset_file(data, str(data / "x.png")) == (data / "x.png").resolve()
    assert dataset_file(data, str(other / "x.png"), (other.resolve(),)) == (other / "x.png").resolve()
    with pytest.raises(Exception, match="is outside the dataset folder and the folders this app may open"):
        dataset_file(data, str(elsewhere / "x.png"), (other.resolve(),))
    with pytest.raises(Exception, match="x.png: is outside the dataset folder$"):
        dataset_file(data, "../other/x.png", (other.resolve(),))  # relative: the dataset only
    (other / "link.png").symlink_to(elsewhere / "x.png")
    with pytest.raises(Exception, match="outside the dataset folder and the folders"):
        dataset_file(data, str(other / "link.png"), (other.resolve(),))  # a link out counts as outside
