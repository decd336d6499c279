"""What the pages say is the next step, and only what is true (issue 33, defect 8)."""

from __future__ import annotations

import pandas as pd
import pytest

from core.files import atomic_write_json, read_json
from core.jobs.process import JobStatus
from tests import bad_inputs as bi
from tests.page_helpers import copy_workspace, open_page, unescape


def _said(at) -> str:
    parts = [e.value for kind in ("info", "warning", "caption", "markdown", "success", "error")
             for e in at.get(kind)]
    parts += [e.value for kind in ("info", "caption") for e in at.sidebar.get(kind)]
    parts += [str(p.proto.label) for p in at.get("page_link")]
    return unescape("\n".join(str(p) for p in parts))


@pytest.mark.parametrize("page", ["pages/search.py", "pages/map.py", "pages/duplicates.py", "pages/train.py"])
def test_an_empty_workspace_points_to_home_not_in_a_circle(page, tmp_path, monkeypatch):
    """No dataset: training is impossible, so no page may send the user to Train first."""
    monkeypatch.setenv("CXR_WORKSPACE", str(tmp_path / "empty"))
    said = _said(open_page(page))
    assert "Home" in said, said
    assert "train one on the Train page" not in said, said


def test_home_does_not_ask_to_train_a_model_the_data_already_has(tiny_workspace, monkeypatch):
    monkeypatch.setenv("CXR_ALLOWED_ROOTS", str(tiny_workspace.root))
    at = open_page("pages/home.py")
    next(t for t in at.text_input if t.label == "Folder on this server").input(str(tiny_workspace.dataset)).run()
    next(b for b in at.button if b.label == "Open folder").click().run()
    assert not at.exception, at.exception
    (said,) = [unescape(s.value) for s in at.success if s.value.startswith("Now using")]
    assert "Train a model on it" not in said, said
    assert f"'{tiny_workspace.run_dir.name}'" in said and "trained on it" in said, said


@pytest.fixture
def no_search_yet(tiny_workspace, tmp_path, monkeypatch):
    """A private copy of the tiny workspace whose model has no duplicate search."""
    run = copy_workspace(tiny_workspace.root, tiny_workspace.run_dir.name, tmp_path / "ws")
    (run / "duplicates.json").unlink(missing_ok=True)
    monkeypatch.setenv("CXR_WORKSPACE", str(tmp_path / "ws"))
    return run


def test_no_duplicate_search_yet_asks_for_the_button_in_the_open_box(no_search_yet):
    at = open_page("pages/duplicates.py")
    assert at.expander[0].label == "Find duplicates" and at.expander[0].proto.expanded
    said = _said(at)
    assert "No duplicate search for this model yet" in said
    assert "open 'Find duplicates'" not in said, said
    assert "press 'Find duplicates'" in said, said


def test_a_running_duplicate_search_is_said_to_be_running(no_search_yet, monkeypatch):
    import pages._duplicates_ui as ui

    monkeypatch.setattr(ui, "search_status", lambda run: JobStatus("running", "threshold auto", started=0.0, pid=1))
    at = open_page("pages/duplicates.py")
    said = _said(at)
    assert "No duplicate search for this model yet" not in said, said
    assert "running" in said


def _dicom(tmp_path, modality: str) -> bytes:
    import pydicom

    path = bi.dicom_rescale_window(tmp_path)
    ds = pydicom.dcmread(path)
    ds.Modality = modality
    ds.save_as(path)
    return path.read_bytes()


@pytest.mark.parametrize("modality, says_ct", [("CR", False), ("DX", False), ("CT", True)])
def test_the_ct_presets_note_shows_for_ct_only(modality, says_ct, tiny_workspace, tmp_path):
    at = open_page("pages/search.py")
    at.file_uploader(key="search_upload").set_value(("film.dcm", _dicom(tmp_path, modality),
                                                     "application/dicom")).run()
    assert not at.exception, at.exception
    assert any(s.label == "Window preset" for s in at.selectbox)
    assert ("Hounsfield" in _said(at)) == says_ct


def test_past_runs_show_no_none_for_same_patient_columns(tiny_workspace, tmp_path, monkeypatch):
    """A run without a same-patient evaluation (here: no evaluation at all) beside one with it."""
    import shutil

    run = copy_workspace(tiny_workspace.root, tiny_workspace.run_dir.name, tmp_path / "ws")
    other = run.parent / "other"
    shutil.copytree(run, other)
    (other / "evaluation.json").unlink()
    evaluation = read_json(run / "evaluation.json")
    atomic_write_json(run / "evaluation.json", {**evaluation, "same_patient": {"precision_at_1": 0.5}})
    monkeypatch.setenv("CXR_WORKSPACE", str(tmp_path / "ws"))
    at = open_page("pages/train.py")
    table: pd.DataFrame = next(d.value for d in at.dataframe if "run" in d.value.columns)
    assert set(table["run"]) == {"tiny", "other"}
    by_run = dict(zip(table["run"], table["same_patient_p@1"], strict=True))
    assert by_run == {"tiny": "0.500", "other": "—"}
    assert "same_patient_reranked_p@1" not in table  # no run has it: omitted

