"""A run folder's life through crashes, typos and a second caller (issue 10, cases 4 and 6-10).

Each test trains the `tiny` preset at 32 px on a dozen images in-process (seconds).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from core.cli.main import main
from core.files import read_jsonl
from core.run_folder import RunPaths, hold_run_lock, read_status, write_status


class Killed(BaseException):
    """Stands for kill -9 (no handler of ours catches a BaseException subclass)."""


TRAIN = ["--preset", "tiny", "--epochs", "2", "--workers", "0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lifecycle") / "data"
    assert main(["demo-data", str(out), "--per-class", "3", "--size", "32", "--seed", "1"]) == 0
    return out


def _one_line(capsys, code: int) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


def test_data_typo_leaves_no_config_and_the_fixed_command_runs(data, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "--data", str(data) + "-typo", "--run", str(run), *TRAIN])
    _one_line(capsys, code)
    assert not RunPaths(run).config.exists()
    assert main(["train", "--data", str(data), "--run", str(run), *TRAIN, "--epochs", "1"]) == 0
    assert read_status(run)["state"] == "finished"


def test_a_second_train_on_the_same_run_is_refused(data, tmp_path, capsys):
    run = tmp_path / "run"
    with hold_run_lock(RunPaths(run)):  # as a training in another process holds it
        code = main(["train", "--data", str(data), "--run", str(run), *TRAIN])
        assert "in use" in _one_line(capsys, code)
    assert not RunPaths(run).metrics.exists()


def test_kill_before_the_first_checkpoint_does_not_log_epoch_1_twice(data, tmp_path, monkeypatch):
    import core.train.trainer as trainer

    run = tmp_path / "run"
    real = trainer.save_checkpoint

    def killed(*args, **kwargs):
        raise Killed  # the end of epoch 1: its metrics row is written, no checkpoint yet

    monkeypatch.setattr(trainer, "save_checkpoint", killed)
    with pytest.raises(Killed):
        main(["train", "--data", str(data), "--run", str(run), *TRAIN])
    assert [r["epoch"] for r in read_jsonl(RunPaths(run).metrics)] == [1]
    monkeypatch.setattr(trainer, "save_checkpoint", real)
    assert main(["train", "--data", str(data), "--run", str(run), *TRAIN]) == 0
    assert [r["epoch"] for r in read_jsonl(RunPaths(run).metrics)] == [1, 2]


def test_nan_loss_stops_at_once_and_keeps_the_last_good_checkpoint(data, tmp_path, capsys,
                                                                    monkeypatch):
    import torch

    from core.train.trainer import Trainer

    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--run", str(run), *TRAIN, "--epochs", "1"]) == 0
    good = RunPaths(run).last.read_bytes()
    steps = []

    def diverged(self, v1, v2):
        steps.append(1)
        return torch.tensor(float("nan"), requires_grad=True)

    monkeypatch.setattr(Trainer, "_step_loss", diverged)
    capsys.readouterr()
    code = main(["train", "--data", str(data), "--run", str(run), *TRAIN, "--epochs", "3"])
    err = _one_line(capsys, code)
    assert "diverged" in err and "nan" in err and "epoch 2" in err
    assert len(steps) == 1  # at once: not a second step, not a second epoch
    assert RunPaths(run).last.read_bytes() == good
    assert read_status(run)["state"] == "failed"
    lines = RunPaths(run).metrics.read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1]


def test_metrics_rows_never_hold_a_bare_nan(tmp_path):
    from core.files import append_jsonl

    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"epoch": 1, "train_loss": math.nan, "val_loss": math.inf})
    row = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"bare {c}"))
    assert row == {"epoch": 1, "train_loss": None, "val_loss": None}


@pytest.mark.parametrize("state", ["running", "embedding", "indexing", "evaluating"])
def test_a_dead_process_reads_interrupted_in_any_state(tmp_path, state):
    paths = RunPaths(tmp_path / "run")
    with hold_run_lock(paths):
        write_status(paths, state, epoch=1, epochs=2)
        assert read_status(paths.root)["state"] == state  # the holder is alive
    assert read_status(paths.root)["state"] == "interrupted"


def test_temp_files_of_a_killed_writer_are_removed_on_the_next_start(data, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    left = [run / ".last.pt.x1y2.tmp", run / ".best.pt.abc.tmp", run / "index.faiss.tmp"]
    for p in left:
        p.write_bytes(b"\0" * 1000)
    assert main(["train", "--data", str(data), "--run", str(run), *TRAIN, "--epochs", "1"]) == 0
    assert not any(p.exists() for p in left)
    assert not list(run.rglob("*.tmp"))


def _query_matches_its_row(run: Path, data: Path) -> str:
    """The served model embeds a known image as its stored vector; returns the generation."""
    from core.data.imageio import load_image
    from core.retrieval.search import Searcher

    s = Searcher(run)
    row = len(s.embeddings) // 2
    vector = s.embed_pixels(load_image(data / s.embeddings.paths[row]).pixels)
    assert float(vector @ s.embeddings.vectors[row]) > 0.9999
    assert s.search_vector(vector, k=1)[0].path == s.embeddings.paths[row]
    return s.generation


def test_continuing_a_finished_run_never_serves_a_stale_index(data, tmp_path, monkeypatch):
    import core.runs.pipeline as pipeline

    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--run", str(run), *TRAIN, "--epochs", "1"]) == 0
    first = _query_matches_its_row(run, data)

    def killed(*args, **kwargs):
        raise Killed  # more epochs trained, best.pt replaced, not yet embedded

    monkeypatch.setattr(pipeline, "embed_run", killed)
    with pytest.raises(Killed):
        main(["train", "--data", str(data), "--run", str(run), *TRAIN, "--epochs", "2"])
    assert _query_matches_its_row(run, data) == first  # the old set, whole, with its own model
    monkeypatch.undo()
    assert main(["train", "--data", str(data), "--run", str(run), *TRAIN, "--epochs", "2"]) == 0
    assert _query_matches_its_row(run, data) != first
