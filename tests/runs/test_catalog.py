"""Runs as the app lists them: training data against the current dataset, and deletion."""

from __future__ import annotations

import json

import pytest

from core.run_folder import RunError
from core.runs.catalog import delete_run, finished_runs, model_data
from core.runs.workspace import Workspace


def _run(ws: Workspace, name: str, data, index: bool = True):
    run = ws.runs_dir / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"data": str(data)}))
    if index:
        (run / "index.faiss").write_bytes(b"x")
    return run


def test_model_data_says_synthetic_and_differs(tmp_path):
    ws = Workspace(tmp_path)
    demo, real = tmp_path / "datasets" / "demo", tmp_path / "real"
    demo.mkdir(parents=True)
    real.mkdir()
    (demo / "demo.json").write_text("{}")
    run = _run(ws, "demo", demo)
    same = model_data(run, demo)
    assert same.synthetic and not same.differs and same.warning(True) is None
    assert same.note() == "Model trained on demo (SYNTHETIC phantoms)."
    other = model_data(run, real)
    assert other.differs and "SYNTHETIC phantoms" in other.warning(current_synthetic=False)
    assert not model_data(run, None).differs


def test_delete_run_refuses_the_active_one_and_strangers(tmp_path):
    ws = Workspace(tmp_path)
    a, b = _run(ws, "a", tmp_path), _run(ws, "b", tmp_path)
    _run(ws, "c", tmp_path, index=False)
    assert {r.name for r in finished_runs(ws.runs_dir)} == {"a", "b"}
    ws.update(active_run=str(a))
    with pytest.raises(RunError, match="is the active model"):
        delete_run(ws, a)
    with pytest.raises(RunError, match="not a run of this workspace"):
        delete_run(ws, tmp_path)
    delete_run(ws, b)
    assert not b.exists() and a.exists()
