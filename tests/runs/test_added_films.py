"""A run's films are one record: films `add` brings in survive `embed`, `train`, kills and races.

Each test here failed on the code before `added.csv` (core.data.added_films): `embed --run`
and a re-run of `train` dropped every added film and left duplicates.json's rows stale (the
next `add` raised 'pair ids must lie in [0, N)'); a kill between the generation switch and
the queue write lost the flags for good; a duplicate search took no run lock; `delete_run`
removed a run another process was writing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.cli.main import main
from core.data.added_films import read_added
from core.duplicates.search import load_result
from core.embed.embeddings import Embeddings
from core.index.artifacts import open_artifact_set
from core.retrieval.search import Searcher
from core.run_folder import RunError, RunPaths, hold_run_lock


class Killed(BaseException):
    """A simulated kill -9 (no `except Exception` catches it)."""


def _add(capsys, run: Path, new: Path) -> dict:
    assert main(["add", "--run", str(run), "--data", str(new), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _new_films(tmp_path: Path, dataset: Path, name: str, seed: int) -> tuple[Path, str]:
    """A folder outside the dataset with a copy of one dataset film and one fresh film."""
    from core.demo.dataset import write_demo_dataset

    new = tmp_path / name
    new.mkdir()
    original = sorted(dataset.rglob("*.png"))[seed]
    shutil.copy(original, new / "copy.png")
    other = write_demo_dataset(tmp_path / f"other-{name}", per_class=1, size=64, seed=100 + seed).root
    shutil.copy(sorted(other.rglob("*.png"))[0], new / "fresh.png")
    return new, original.relative_to(dataset).as_posix()


def _rows_follow_paths(run: Path) -> None:
    served = Embeddings.load(run)
    result = load_result(run)
    for p in result.pairs:
        assert served.paths[p.i] == p.a and served.paths[p.j] == p.b, p


@pytest.fixture
def run(tiny_workspace, tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(tiny_workspace.run_dir, run)  # the session's run stays as it was
    return run


def test_embed_and_train_keep_added_films_and_their_pairs(run, tiny_workspace, tmp_path, capsys):
    data = tiny_workspace.dataset
    before = len(Embeddings.load(run))
    new, original = _new_films(tmp_path, data, "new", 0)
    out = _add(capsys, run, new)
    assert out["added"] == 2
    fresh = (new / "fresh.png").as_posix()
    assert [f.path for f in read_added(RunPaths(run))] == [(new / "copy.png").as_posix(), fresh]

    assert main(["embed", "--run", str(run), "--device", "cpu"]) == 0
    capsys.readouterr()
    served = Embeddings.load(run)
    assert len(served) == before + 2 and fresh in served.paths
    assert Searcher(run).search(new / "fresh.png", k=3)[0].path == fresh
    _rows_follow_paths(run)
    assert any({p.a, p.b} == {original, (new / "copy.png").as_posix()} for p in load_result(run).pairs)

    more, _ = _new_films(tmp_path, data, "more", 1)
    out = _add(capsys, run, more)  # raised 'pair ids must lie in [0, N)' on stale rows
    assert out["added"] == 2
    _rows_follow_paths(run)

    assert main(["train", "--data", str(data), "--run", str(run), "--preset", "tiny",
                 "--workers", "0"]) == 0  # finished: re-embeds and re-scores only
    capsys.readouterr()
    served = open_artifact_set(run).embeddings
    assert len(served) == before + 4
    assert Searcher(run).search(more / "fresh.png", k=3)[0].path == (more / "fresh.png").as_posix()
    _rows_follow_paths(run)
    # The run is still scored on its dataset: added films (no label) are not in its gallery.
    report = json.loads(RunPaths(run).report.read_text())
    assert report["n_images"] == before + 4


def test_a_kill_before_the_queue_write_is_checked_by_the_next_add(run, tiny_workspace, tmp_path,
                                                                   capsys, monkeypatch):
    import core.runs.ingest as ingest

    new, original = _new_films(tmp_path, tiny_workspace.dataset, "new", 0)
    real = ingest._queue

    def killed(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(ingest, "_queue", killed)
    with pytest.raises(Killed):
        main(["add", "--run", str(run), "--data", str(new), "--json"])
    monkeypatch.setattr(ingest, "_queue", real)
    copy = (new / "copy.png").as_posix()
    assert copy in Embeddings.load(run).paths  # indexed: the generation switched
    result = load_result(run)
    assert result is None or not any(copy in (p.a, p.b) for p in result.pairs)

    out = _add(capsys, run, new)  # added nothing new, and before: checked nothing either
    assert out["added"] == 0 and out["rechecked"] == 2
    assert any({p["a"], p["b"]} == {original, copy} and p["kind"] == "exact" for p in out["pairs"])
    assert any({p.a, p.b} == {original, copy} for p in load_result(run).pairs)
    assert all(f.checked for f in read_added(RunPaths(run)))
    assert _add(capsys, run, new)["rechecked"] == 0  # checked once, not at every add


def test_a_duplicate_search_waits_for_no_one_and_overwrites_nothing_while_add_holds_the_run(
        run, capsys):
    queue = RunPaths(run).root / "duplicates.json"
    saved = queue.read_bytes() if queue.is_file() else None
    with hold_run_lock(RunPaths(run)):  # as `add`, `embed` or `train` would
        assert main(["duplicates", "--run", str(run), "--threshold", "0.99"]) == 2
    err = capsys.readouterr().err
    assert "in use by another process" in err and len(err.strip().splitlines()) == 1
    assert (queue.read_bytes() if queue.is_file() else None) == saved


def test_delete_run_refuses_a_run_in_use_and_deletes_it_whole_after(tiny_workspace, tmp_path):
    from core.runs.catalog import delete_run
    from core.runs.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    run, active = ws.runs_dir / "r", ws.runs_dir / "s"
    shutil.copytree(tiny_workspace.run_dir, run)
    shutil.copytree(tiny_workspace.run_dir, active)
    ws.update(active_run=str(active))
    with hold_run_lock(RunPaths(run)), pytest.raises(RunError, match="in use"):
        delete_run(ws, run)
    assert open_artifact_set(run).index.ntotal > 0  # nothing of it was removed
    delete_run(ws, run)
    assert not run.exists() and list(ws.runs_dir.iterdir()) == [active]


def test_a_run_deleted_while_a_command_waited_is_refused_not_recreated(tmp_path):
    with pytest.raises(RunError, match="no config.json"):
        with hold_run_lock(RunPaths(tmp_path / "gone"), exists=True):
            pass
    assert not (tmp_path / "gone").exists()


def test_a_damaged_metrics_row_on_resume_is_dropped_not_raised(tmp_path):
    from core.runs.pipeline import _trim_metrics

    paths = RunPaths(tmp_path)
    paths.metrics.write_text('{"epoch": 1, "val_loss": 1.0}\n{"epoch": "x"}\n{"epoch": 2}\n')
    _trim_metrics(paths, 1)  # TypeError: '<=' not supported between 'str' and 'int'
    assert [json.loads(x) for x in paths.metrics.read_text().splitlines()] == [
        {"epoch": 1, "val_loss": 1.0}]


def test_add_prints_a_film_named_with_an_escape_sequence_escaped(run, tiny_workspace, tmp_path,
                                                                  capsys):
    new = tmp_path / "new"
    new.mkdir()
    shutil.copy(sorted(tiny_workspace.dataset.rglob("*.png"))[0], new / "\x1b[31mred.png")
    assert main(["add", "--run", str(run), "--data", str(new)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[31mred.png" in out


def test_a_run_in_use_whose_status_json_is_a_list_is_one_line(tmp_path):
    paths = RunPaths(tmp_path / "r")
    paths.root.mkdir()
    paths.status.write_text("[1, 2]")
    with hold_run_lock(paths), pytest.raises(RunError, match="in use"):  # was AttributeError
        with hold_run_lock(paths, wait=0.1):
            pass
