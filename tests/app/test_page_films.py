"""Films page through the entry point (AppTest): filters, similarity sort, bulk tags, saved
views, and the selection carried to the Map and back."""

from __future__ import annotations

import json
import sqlite3

import pytest

from core.data.patient_ids import display_patient, patient_key
from core.embed.embeddings import Embeddings
from core.embed.projection import cached_projection
from core.review import TagStore
from core.runs.workspace import Workspace
from pages._map_ui import TO_GRID
from tests.page_helpers import copy_workspace, open_page, unescape

PICK = "films_pick_"


def _shown(at) -> list[int]:
    """Embedding rows of the films on the grid's page, in order (from each cell's checkbox)."""
    return [int(c.key[len(PICK):]) for c in at.checkbox if c.key and c.key.startswith(PICK)]


@pytest.fixture
def workspace(tiny_workspace, tmp_path, monkeypatch):
    """A private copy of the tiny workspace (tags and views are written into it)."""
    run = copy_workspace(tiny_workspace.root, tiny_workspace.run_dir.name, tmp_path / "ws")
    monkeypatch.setenv("CXR_WORKSPACE", str(run.parent.parent))
    return run


def _open(reviewer: str = "ann"):
    at = open_page("pages/films.py")
    at.sidebar.text_input(key="dup_reviewer").input(reviewer).run()
    assert not at.exception, at.exception
    return at


def test_every_film_then_filters_narrow(workspace):
    emb = Embeddings.load(workspace)
    at = _open()
    assert at.title[0].value == "Films"
    assert sorted(_shown(at)) == list(range(min(len(emb), 24)))
    label = emb.labels[0]
    at.multiselect(key="films_f_label").set_value([label]).run()
    assert _shown(at) and all(emb.labels[r] == label for r in _shown(at))
    assert len(_shown(at)) == emb.labels.count(label)
    at.multiselect(key="films_f_split").set_value(["test"]).run()
    expected = [r for r in range(len(emb)) if emb.labels[r] == label and emb.splits[r] == "test"]
    assert sorted(_shown(at)) == expected
    # patients are offered by keyed name only, and narrow to that patient's films
    at.multiselect(key="films_f_label").set_value([])
    at.multiselect(key="films_f_split").set_value([]).run()
    options = at.multiselect(key="films_f_patient").options
    assert options and all(o.startswith("pt-") for o in options)
    assert not set(options) & set(emb.patients)
    at.multiselect(key="films_f_patient").set_value([options[0]]).run()
    rows = _shown(at)
    assert rows and len({emb.patients[r] for r in rows}) == 1
    assert display_patient(emb.patients[rows[0]], patient_key(workspace.parent.parent)) == options[0]


def test_sort_by_similarity_puts_the_film_itself_first(workspace):
    emb = Embeddings.load(workspace)
    target = emb.paths[7]
    at = _open()
    at.button(key="films_sim_7").click().run() if 7 in _shown(at) else \
        at.selectbox(key="films_similar_to").set_value(target).run()
    assert not at.exception
    assert at.selectbox(key="films_similar_to").value == target
    rows = _shown(at)
    assert rows[0] == 7
    cosines = [float(t.value.split("\n")[0].split()[1]) for t in at.text if t.value.startswith("cosine")]
    assert cosines[0] == pytest.approx(1.0, abs=1e-4)
    assert cosines == sorted(cosines, reverse=True)


def test_bulk_tag_then_filter_by_tag_shows_exactly_those_films(workspace):
    emb = Embeddings.load(workspace)
    at = _open()
    first = _shown(at)[:3]
    for r in first:
        at.checkbox(key=f"{PICK}{r}").check().run()
    assert at.button(key="films_bulk_add").label == "Tag 3 selected"
    at.text_input(key="films_bulk_tag").input("check again").run()
    at.button(key="films_bulk_add").click().run()
    assert not at.exception and not at.error
    store = TagStore(Workspace(workspace.parent.parent).reviews_db,
                     dataset=json.loads((workspace / "config.json").read_text())["data"])
    assert store.films_with("check again") == {emb.paths[r] for r in first}
    assert {e.reviewer for e in store.history()} == {"ann"}
    at.button(key="films_sel_clear").click().run()
    at.multiselect(key="films_f_tag").set_value(["check again"]).run()
    assert sorted(_shown(at)) == sorted(first)
    # taken off one film in bulk: the filter follows
    at.checkbox(key=f"{PICK}{first[0]}").check().run()
    assert any(unescape(c.value) == "Tags in use: check again (3)" for c in at.caption)
    assert at.text_input(key="films_bulk_tag").value == "check again"  # kept for the next batch
    at.button(key="films_bulk_remove").click().run()
    assert sorted(_shown(at)) == sorted(first[1:])


def test_a_saved_view_re_applies(workspace):
    emb = Embeddings.load(workspace)
    at = _open()
    label = emb.labels[-1]
    at.multiselect(key="films_f_label").set_value([label])
    at.multiselect(key="films_f_split").set_value(["train"]).run()
    wanted = sorted(_shown(at))
    at.text_input(key="films_view_name").input("train of one class").run()
    at.button(key="films_view_save").click().run()
    assert not at.exception and not at.error
    at.multiselect(key="films_f_label").set_value([])
    at.multiselect(key="films_f_split").set_value([]).run()
    assert len(_shown(at)) > len(wanted)
    again = _open()  # a new session: the view is in the workspace, not in the session
    assert again.selectbox(key="films_view").options == ["train of one class"]
    again.selectbox(key="films_view").set_value("train of one class").run()
    again.button(key="films_view_apply").click().run()
    assert not again.exception
    assert again.multiselect(key="films_f_label").value == [label]
    assert sorted(_shown(again)) == wanted


def test_selection_goes_to_the_map_and_comes_back(workspace):
    cached_projection(workspace, "tsne", 30, 0, "all")  # the map draws it, starts no process
    emb = Embeddings.load(workspace)
    at = _open()
    picked = _shown(at)[2:6]
    for r in picked:
        at.checkbox(key=f"{PICK}{r}").check().run()
    at.button(key="films_to_map").click().run()
    assert not at.exception, at.exception
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    ring = [t for t in figure["data"] if t["name"] == "found"]
    assert ring and sorted(p[0] for p in ring[0]["customdata"]) == sorted(picked)
    assert any(s.value == f"{len(picked)} selected images" for s in at.subheader)
    # the map's selection, handed back (what its "Open in the grid" button stores)
    at.session_state[TO_GRID] = [emb.paths[r] for r in picked[:2]]
    at.switch_page("pages/films.py").run()
    assert not at.exception
    assert at.checkbox(key="films_only_selected").value
    assert sorted(_shown(at)) == sorted(picked[:2])


def test_a_quality_list_is_tagged_in_bulk_and_the_grid_filters_by_it(workspace):
    at = open_page("pages/quality.py")
    at.button_group(key="q_list").set_value("label_errors").run()
    listed = [t.value.split("\n") for t in at.text if t.value.startswith(tuple("123456789"))]
    assert listed, "the tiny run has likely label errors"
    at.sidebar.text_input(key="dup_reviewer").input("bob").run()
    at.text_input(key="q_tag_label_errors_tag").input("label?").run()
    assert at.button(key="q_tag_label_errors_add").label == f"Tag {len(listed)} on this list"
    at.button(key="q_tag_label_errors_add").click().run()
    assert not at.exception and not at.error
    store = TagStore(Workspace(workspace.parent.parent).reviews_db,
                     dataset=json.loads((workspace / "config.json").read_text())["data"])
    assert len(store.films_with("label?")) == len(listed)
    grid = _open()
    grid.multiselect(key="films_f_tag").set_value(["label?"]).run()
    emb = Embeddings.load(workspace)
    assert {emb.paths[r] for r in _shown(grid)} == store.films_with("label?")


def test_tagging_without_a_reviewer_name_says_so_and_writes_nothing(workspace):
    at = open_page("pages/films.py")
    at.checkbox(key=f"{PICK}{_shown(at)[0]}").check().run()
    at.text_input(key="films_bulk_tag").input("x").run()
    at.button(key="films_bulk_add").click().run()
    assert not at.exception
    assert [unescape(e.value) for e in at.error] == ["enter a reviewer name before tagging"]
    db = Workspace(workspace.parent.parent).reviews_db
    assert not db.exists() or not sqlite3.connect(db).execute(
        "SELECT 1 FROM sqlite_master WHERE name = 'tags'").fetchall() or \
        sqlite3.connect(db).execute("SELECT COUNT(*) FROM tags").fetchone()[0] == 0
