"""Embedding map page through the entry point (AppTest): points, per-class quality, find, colours."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from core.embed.embeddings import Embeddings
from core.embed.projection import Projection, ProjectionSpec, cached_projection
from core.files import atomic_write_json
from core.jobs.projection import projection_status
from pages._map_ui import find_rows, is_area_selection, map_figure, selected_rows
from tests.page_helpers import copy_workspace, open_page

NEIGHBOUR = re.compile(r"^#\d+$")  # the button; its tooltip names the film and its cosine


@pytest.fixture
def tsne_ready(tiny_workspace):
    """The default map (t-SNE, perplexity 30, seed 0, all images) computed beforehand, so the
    page draws it instead of starting the background process."""
    cached_projection(tiny_workspace.run_dir, "tsne", 30, 0, "all")
    return tiny_workspace


def _count(values) -> int:
    """Length of a Plotly array, plain or typed ({'dtype': 'f4', 'bdata': base64})."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).size
    return len(values)


def _sizes(at) -> dict[str, int]:
    """Points per trace of the map, by legend name."""
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    return {t["name"]: _count(t["x"]) for t in figure["data"]}


def _captions(at) -> list[str]:
    return [c.value for c in at.caption]


def test_map_shows_every_image_and_per_class_quality(tsne_ready):
    at = open_page("pages/map.py")
    emb = Embeddings.load(tsne_ready.run_dir)
    assert any(c.startswith(f"{len(emb)} images · t-SNE · split: all") for c in _captions(at))
    sizes = _sizes(at)
    assert sum(sizes.values()) == len(emb)
    assert sizes == {label: emb.labels.count(label) for label in set(emb.labels)}
    evaluation = json.loads((tsne_ready.run_dir / "evaluation.json").read_text())
    table = at.dataframe[0].value  # the only table on the page
    assert list(table["class"]) == sorted(evaluation["per_class"])
    for _, row in table.iterrows():
        expected = evaluation["per_class"][row["class"]]
        assert row["P@5"] == pytest.approx(expected["precision_at_5"])
        assert row["mAP"] == pytest.approx(expected["map"])
        assert row["queries"] == expected["n_queries"]
    # the demo set's manifest gives patients; no duplicate search yet; class folders are not
    # offered again as 'folder'
    assert at.selectbox(key="map_colour").options == ["label", "patient", "split"]


def test_pca_view_of_one_split(tsne_ready):
    at = open_page("pages/map.py")
    at.radio(key="map_view").set_value("PCA")
    at.selectbox(key="map_split").set_value("test").run()
    assert not at.exception
    n_test = Embeddings.load(tsne_ready.run_dir).splits.count("test")
    assert any(c.startswith(f"{n_test} images · PCA · split: test") for c in _captions(at))


def test_find_by_name_rings_the_file_and_opens_its_neighbours(tsne_ready):
    emb = Embeddings.load(tsne_ready.run_dir)
    target = emb.paths[5]
    at = open_page("pages/map.py")
    at.text_input(key="map_find").set_value(Path(target).name).run()
    assert not at.exception
    assert "1 file(s) match; the first is ringed on the map." in _captions(at)
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    found = [t for t in figure["data"] if t["name"] == "found"]
    assert len(found) == 1 and found[0]["customdata"][0][0] == 5
    texts = [t.value for t in at.text]
    assert any(t.startswith(target) and f"label: {emb.labels[5]}" in t for t in texts)
    neighbours = [b for b in at.button if (b.key or "").startswith("map_nb_")]
    assert len(neighbours) == min(8, len(emb) - 1) and all(NEIGHBOUR.match(b.label) for b in neighbours)
    assert all(re.search(r"cosine \d\.\d{3}\)$", b.help) for b in neighbours)
    neighbours[0].click().run()  # a neighbour opens in turn
    opened = int(neighbours[0].key.removeprefix("map_nb_"))
    assert any(t.value.startswith(emb.paths[opened]) for t in at.text) and not at.exception
    at.text_input(key="map_find").set_value("no-such-file").run()
    assert "No file of this split matches that name." in _captions(at)


def test_duplicate_groups_colour_the_map(tiny_workspace, tmp_path, monkeypatch):
    run = copy_workspace(tiny_workspace.root, tiny_workspace.run_dir.name, tmp_path / "ws")
    emb = Embeddings.load(run)
    atomic_write_json(run / "duplicates.json", {
        "run": str(run), "data": "", "method": "auto",
        "rule": {"threshold": 0.97, "hash_threshold": -1, "hash_floor": -1.0},
        "estimated_precision": None, "estimated_recall": None, "n_images": len(emb), "pairs": [],
        "groups": [emb.paths[:3], emb.paths[3:5]], "leakage": {}})
    monkeypatch.setenv("CXR_WORKSPACE", str(tmp_path / "ws"))
    at = open_page("pages/map.py")
    at.radio(key="map_view").set_value("PCA").run()
    at.selectbox(key="map_colour").set_value("duplicate group").run()
    assert not at.exception
    assert _sizes(at) == {"group 1": 3, "group 2": 2, "no group": len(emb) - 5}


def test_selection_helpers_read_customdata_rows():
    click = {"selection": {"points": [{"customdata": [7, "a.png", "x"], "point_index": 0}],
                           "point_indices": [0], "box": [], "lasso": []}}
    assert selected_rows(click) == [7] and not is_area_selection(click)
    box = {"selection": {"points": [{"customdata": [3]}, {"customdata": [1]}, {"customdata": [3]},
                                    {"x": 1.0}], "box": [{"x": [0, 1]}], "lasso": []}}
    assert selected_rows(box) == [3, 1] and is_area_selection(box)
    assert selected_rows(None) == [] and selected_rows({}) == []


def test_find_rows_prefers_exact_names():
    paths = ["a/img1.png", "b/img10.png", "c/IMG1.png", "d/other.png"]
    assert find_rows(paths, np.arange(4), "img1.png") == [0, 2]
    assert find_rows(paths, np.arange(4), "IMG1") == [0, 2, 1]
    assert find_rows(paths, np.array([1, 3]), "img1") == [1]
    assert find_rows(paths, np.arange(4), "  ") == []


def test_figure_escapes_names_and_labels():
    emb = Embeddings(["d/<b>x<b>.png", "y.png"], ["<i>L</i>", "M"], ["train", "test"], ["", ""],
                     np.eye(2, dtype=np.float32))
    proj = Projection(ProjectionSpec("pca"), np.arange(2), np.zeros((2, 2), np.float32))
    fig = map_figure(proj, emb, emb.labels, highlight=[1])
    names = {t.name for t in fig.data}
    assert "&lt;i&gt;L&lt;/i&gt;" in names and "found" in names
    custom = [row for t in fig.data for row in t.customdata]
    assert [0, "&lt;b&gt;x&lt;b&gt;.png", "&lt;i&gt;L&lt;/i&gt;"] in [list(r) for r in custom]


def test_missing_tsne_is_computed_in_the_background_with_progress(tsne_ready):
    at = open_page("pages/map.py")
    at.select_slider(key="map_perplexity").set_value(5).run()
    assert not at.exception
    bars = at.get("progress")
    assert len(bars) == 1 and "Computing t-SNE" in bars[0].proto.text
    assert any(" · PCA · " in c for c in _captions(at))  # the preview meanwhile
    spec = ProjectionSpec("tsne", 5.0, 0, "all")
    deadline = time.monotonic() + 180
    while projection_status(tsne_ready.run_dir, spec).state == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert projection_status(tsne_ready.run_dir, spec).state == "done"
    at.run()
    assert any(" · t-SNE · " in c for c in _captions(at)) and not at.get("progress")
