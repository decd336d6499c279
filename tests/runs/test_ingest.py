"""`python -m core add`: new films embedded, indexed and checked; re-adding adds nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from core.cli.main import main
from core.duplicates.search import load_result
from core.embed.embeddings import Embeddings
from core.index.vectors import VectorIndex
from core.run_folder import RunPaths


def _add(capsys, run: Path, new: Path) -> dict:
    assert main(["add", "--run", str(run), "--data", str(new), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_add_indexes_new_files_flags_copies_and_is_idempotent(tiny_workspace, tmp_path, capsys):
    from core.demo.dataset import write_demo_dataset

    run = tmp_path / "run"
    shutil.copytree(tiny_workspace.run_dir, run)  # the session's run stays as it was
    before = Embeddings.load(run)
    original = sorted(tiny_workspace.dataset.rglob("*.png"))[0]
    new = tmp_path / "new"
    new.mkdir()
    shutil.copy(original, new / "copy.png")  # the same film, arriving again
    other = write_demo_dataset(tmp_path / "other", per_class=1, size=64, seed=7).root
    shutil.copy(sorted(other.rglob("*.png"))[0], new / "fresh.png")
    (new / "broken.png").write_bytes(b"not an image")

    out = _add(capsys, run, new)
    assert out["added"] == 2
    assert [s["path"] for s in out["skipped"]] == [(new / "broken.png").as_posix()]
    rel = original.relative_to(tiny_workspace.dataset).as_posix()
    copy = [p for p in out["pairs"] if {p["a"], p["b"]} == {rel, (new / "copy.png").as_posix()}]
    assert copy and copy[0]["kind"] == "exact" and copy[0]["score"] > 0.999
    assert all(p["kind"] in ("exact", "copy", "similar", "same_patient") for p in out["pairs"])

    after = Embeddings.load(run)
    assert len(after) == len(before) + 2 and after.paths[:len(before)] == before.paths
    np.testing.assert_array_equal(after.vectors[:len(before)], before.vectors)
    index = VectorIndex.load(RunPaths(run).index)
    assert index.ntotal == len(after)
    queued = {(p.a, p.b) for p in load_result(run).pairs}
    assert (copy[0]["a"], copy[0]["b"]) in queued

    again = _add(capsys, run, new)
    assert again["added"] == 0 and again["pairs"] == []
    assert sorted(s["reason"] for s in again["skipped"])[-2:] == ["already indexed"] * 2
    assert len(Embeddings.load(run)) == len(after)
    assert VectorIndex.load(RunPaths(run).index).ntotal == len(after)
    assert len(load_result(run).pairs) == len(load_result(run).pairs)


def test_add_to_a_folder_without_a_run_is_a_one_line_error(tmp_path, capsys):
    assert main(["add", "--run", str(tmp_path), "--data", str(tmp_path)]) != 0
    assert "no embeddings and index" in capsys.readouterr().err
