"""The Data quality page through the entry point (AppTest): the lists of the tiny run, measuring
its films once, the report's download, a run without labels, and a workspace without a run."""

from __future__ import annotations

import shutil

import pytest

from core.files import atomic_write_csv, atomic_write_json, read_json
from core.quality import STATS_FILE
from core.run_folder import RunPaths
from tests.page_helpers import open_page

PAGE = "pages/quality.py"


def _copy(src, dest):
    """The tiny workspace without its checkpoints, films or thumbnails (the page reads none of
    them; the run folder receives quality-stats.npz here, never in the shared run)."""
    shutil.copytree(src.root, dest, ignore=shutil.ignore_patterns("datasets", "thumbnails", "*.pt"))
    run = dest / "runs" / src.run_dir.name
    settings = read_json(src.root / "workspace.json", default={}) or {}
    atomic_write_json(dest / "workspace.json", {**settings, "active_run": str(run)})
    return run


@pytest.fixture(scope="module")
def _copies(_tiny_workspace_built, tmp_path_factory):
    base = tmp_path_factory.mktemp("quality")
    labelled = _copy(_tiny_workspace_built, base / "labelled")
    unlabelled = _copy(_tiny_workspace_built, base / "unlabelled")
    items = RunPaths(unlabelled).items
    rows = (items.read_text().splitlines())
    header, body = rows[0].split(","), [r.split(",") for r in rows[1:]]
    assert header == ["path", "label", "split", "patient_id"]
    atomic_write_csv(items, header, [[r[0], "", *r[2:]] for r in body])  # a run with no labels
    return labelled, unlabelled


@pytest.fixture
def quality_run(_copies, monkeypatch):
    run = _copies[0]
    monkeypatch.setenv("CXR_WORKSPACE", str(run.parent.parent))
    return run


def _options(at):
    return list(at.button_group(key="q_list").proto.options)


def _texts(at) -> list[str]:
    return [t.value for t in at.text]


def test_lists_show_with_reasons_and_the_films_are_measured_once(quality_run):
    at = open_page(PAGE)
    assert at.title[0].value == "Data quality"
    assert at.button(key="q_measure").label == "Measure 26 films"
    labels = [o.content for o in _options(at)]
    assert labels[0].startswith("Outliers (") and labels[1].startswith("Likely label errors (")
    assert labels[2:] == ["Exposure", "Blur", "Near-empty or not a radiograph"]  # not measured yet
    at.button_group(key="q_list").set_value("label_errors").run()
    assert not at.exception
    assert any("of 10 nearest are" in t for t in _texts(at))
    assert any(t.startswith("1. own-label share ") for t in _texts(at))  # rank, score and its name
    assert at.get("download_button")[0].proto.label == "Download report (HTML)"

    at.button(key="q_measure").click().run()
    assert not at.exception, at.exception
    assert (quality_run / STATS_FILE).is_file()
    assert not [b for b in at.button if b.key == "q_measure"]  # measured: no offer any more
    assert any(s.value == "Measured 26 films." for s in at.success)
    for name in ("exposure", "blur", "content"):
        at.button_group(key="q_list").set_value(name).run()
        assert not at.exception
        assert not [i for i in at.info if "Measure the films" in i.value]
    labels = [o.content for o in _options(at)]
    assert labels[2].startswith("Exposure (") and labels[3].startswith("Blur (")


def test_a_run_without_labels_says_why_it_has_no_label_list(_copies, monkeypatch):
    run = _copies[1]
    monkeypatch.setenv("CXR_WORKSPACE", str(run.parent.parent))
    at = open_page(PAGE)
    assert [o.content for o in _options(at)][1] == "Likely label errors"  # no count: skipped
    at.button_group(key="q_list").set_value("label_errors").run()
    assert not at.exception
    assert [i.value for i in at.info if "no labels" in i.value] == [
        "The run has no labels, so there is no label to disagree with\\."]
    at.button_group(key="q_list").set_value("outliers").run()
    assert not at.exception


def test_a_workspace_without_a_run_points_to_the_next_step(tmp_path, monkeypatch):
    monkeypatch.setenv("CXR_WORKSPACE", str(tmp_path))
    at = open_page(PAGE)
    assert any("No dataset in this workspace yet" in i.value for i in at.info)
