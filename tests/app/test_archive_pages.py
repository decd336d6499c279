"""Both test archives through every page (AppTest), on one tiny run trained on the two folders:
`train --data TREE --data FLAT`, the nested DICOM tree first, the flat PNG/JPEG folder second.

The flat folder lies outside the workspace and every allowed root ($CXR_ALLOWED_ROOTS is empty):
its films are recorded by absolute path and the pages open them only because the run names the
folder (`core.data.access.run_folders`). Each page (Home on either folder, Map, Search with a
query from each folder, Compare, Duplicates' review desk and grid, Films, Data quality, Train) opens
without an exception, refuses no film of the run, and claims no label: neither archive has one.
"""

from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from core.data.imageio import ImageReadError
from core.duplicates.search import load_result
from core.embed.embeddings import Embeddings
from tests.archives import dicom_tree, flat_films
from tests.page_helpers import APP


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A workspace whose active run is trained tiny on the DICOM tree and the flat folder, with
    a duplicate search and its t-SNE map."""
    from core.config import Runtime, make_run_config
    from core.duplicates.search import run_duplicates
    from core.embed.projection import cached_projection
    from core.runs.pipeline import train_run
    from core.runs.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("pages") / "ws")
    tree = dicom_tree(ws.datasets_dir / "hospital")
    flat = flat_films(tmp_path_factory.mktemp("elsewhere") / "flat").resolve()
    shutil.copy(flat / "film03.png", flat / "film03-copy.png")  # an exact pair in the second folder
    run = ws.runs_dir / "two"
    config = make_run_config(str(tree.root.resolve()), "tiny", more_data=[str(flat)], epochs=1)
    train_run(config, run, runtime=Runtime(workers=0))
    run_duplicates(run, 0.9)
    cached_projection(run, "tsne", 30, 0, "all")
    ws.update(dataset=str(tree.root), active_run=str(run))
    emb = Embeddings.load(run)
    assert not any(emb.labels)
    return {"ws": ws, "tree": tree, "flat": flat, "run": run, "emb": emb,
            "second": [p for p in emb.paths if p.startswith(str(flat))]}


@pytest.fixture
def pages(two, monkeypatch) -> dict:
    """The workspace for the app, no allowed root beyond it, and every refusal of a film
    recorded (a refused thumbnail is a grey square, so the page alone would not say)."""
    monkeypatch.setenv("CXR_WORKSPACE", str(two["ws"].root))
    monkeypatch.setenv("CXR_ALLOWED_ROOTS", "")
    refused: list[str] = []
    init = ImageReadError.__init__

    def recording(self, name, reason=None):
        init(self, name, reason)
        if "outside" in self.reason:
            refused.append(str(self))

    monkeypatch.setattr(ImageReadError, "__init__", recording)
    saved = two["ws"].settings()
    yield {**two, "refused": refused}
    two["ws"].update(**saved)


def _open(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(page).run()
    _fine(at)
    return at


def _fine(at: AppTest) -> None:
    """No exception, and no label claimed: no class picker, vote or table with a label in it."""
    assert not at.exception, at.exception
    assert "Class" not in [s.label for s in at.selectbox]
    assert not any(m.value.startswith("**Label vote") or "by class" in m.value for m in at.markdown)
    for frame in at.dataframe:
        for column in ("label", "class", "Label", "Class"):
            if column in frame.value.columns:
                assert not any(str(v).strip() for v in frame.value[column]), (column, frame.value)


def test_home_opens_each_folder(pages) -> None:
    ws, tree, flat = pages["ws"], pages["tree"], pages["flat"]
    for folder, films in ((tree.root, None), (flat, 19)):
        ws.update(dataset=str(folder))
        at = _open("pages/home.py")
        metrics = {m.label: m.value for m in at.metric}
        assert "Classes" not in metrics and "Films" in metrics
        if films:
            assert metrics["Films"] == str(films)
    assert pages["refused"] == []


def test_map_opens_a_film_of_each_folder(pages) -> None:
    emb, second = pages["emb"], pages["second"]
    at = _open("pages/map.py")
    options = at.selectbox(key="map_colour").options
    assert "label" not in options and "patient" in options
    for colour in options:
        at.selectbox(key="map_colour").set_value(colour).run()
        _fine(at)
    for path in (emb.paths[0], second[0]):
        at.session_state["map_focus"] = emb.paths.index(path)
        at.run()
        _fine(at)
        assert len(at.get("image")) >= 1
    assert pages["refused"] == []


def test_search_and_compare_answer_a_film_of_each_folder(pages) -> None:
    tree, second = pages["tree"], pages["second"]
    query_tree = str(tree.root.resolve() / "HOSP00002/study0/series1/img1.dcm")
    at = _open("pages/search.py")
    at.radio(key="search_source").set_value("Pick from the dataset").run()
    for path, shown in (("HOSP00002/study0/series1/img1.dcm", query_tree), (second[0], second[0])):
        at.selectbox(key="search_pick_path").set_value(path).run()
        _fine(at)
        assert not [e.value for e in at.error]
        compare = [s for s in at.selectbox if s.label == "Compare the query with result"][0]
        assert compare.value == 1
        assert shown.rsplit("/", 1)[-1] in "\n".join(t.value for t in at.text)
    assert pages["refused"] == []


def test_duplicates_review_desk_and_grid(pages) -> None:
    flat = pages["flat"]
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/duplicates.py").run()
    at.sidebar.text_input(key="dup_reviewer").input("ann").run()
    _fine(at)
    assert not [e.value for e in at.error]
    at.toggle(key="dup_grid").set_value(True).run()
    _fine(at)
    for section in ("Calibration", "Leakage", "Export"):
        at.segmented_control(key="dup_section").set_value(section).run()
        _fine(at)
    assert pages["refused"] == []
    pairs = {(p.a, p.b) for p in load_result(pages["run"]).pairs}
    assert (str(flat / "film03-copy.png"), str(flat / "film03.png")) in pairs


def test_films_quality_and_train_pages_open(pages) -> None:
    _open("pages/films.py")
    _open("pages/quality.py")
    _open("pages/train.py")
    assert pages["refused"] == []
