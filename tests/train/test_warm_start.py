"""Warm start: `train --weights RUN` (a run folder) or a checkpoint file starts from that
run's backbone; a bad --weights is one line (exit 2) and leaves nothing that blocks a retry."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from core.cli.main import main
from core.config import ModelConfig, RunConfig, make_run_config
from core.model.checkpoint import load_checkpoint, save_checkpoint
from core.model.network import WeightsError, build_model
from core.run_folder import RunPaths
from core.runs.pipeline import train_run
from core.train.trainer import Trainer


def _backbone(checkpoint: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(checkpoint)["model"]
    return {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_folder_gives_its_best_backbone(tiny_workspace):
    source = _backbone(RunPaths(tiny_workspace.run_dir).best)
    model = build_model(ModelConfig(weights=str(tiny_workspace.run_dir)))
    assert _same(model.backbone.state_dict(), source)
    fresh = build_model(ModelConfig(weights="none"))
    assert not _same(fresh.backbone.state_dict(), source)  # the comparison can fail


def test_a_warm_started_run_starts_from_the_other_runs_backbone(tiny_workspace, tmp_path, monkeypatch):
    source = _backbone(RunPaths(tiny_workspace.run_dir).best)
    seen: list[dict[str, torch.Tensor]] = []
    original = Trainer.fit

    def spy(self, *args, **kwargs):  # the weights the first step starts from
        seen.append({k: v.clone() for k, v in self.model.backbone.state_dict().items()})
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "fit", spy)
    run = tmp_path / "warm"
    config = make_run_config(str(tiny_workspace.dataset), "tiny", weights=str(tiny_workspace.run_dir),
                             epochs=1)
    report = train_run(config, run)
    assert report is not None and report.state == "finished"
    assert _same(seen[0], source)
    assert RunConfig.load(RunPaths(run).config).model.weights == str(tiny_workspace.run_dir)  # saved
    assert load_checkpoint(RunPaths(run).best)["config"]["model"]["weights"] == str(tiny_workspace.run_dir)


def test_a_warm_run_resumes_after_its_source_is_gone(tiny_workspace, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(RunPaths(tiny_workspace.run_dir).best, source / "best.pt")
    run = tmp_path / "warm"
    first = make_run_config(str(tiny_workspace.dataset), "tiny", weights=str(source), epochs=1)
    train_run(first, run)
    shutil.rmtree(source)  # the resume reads last.pt, never the initial weights again
    report = train_run(make_run_config(str(tiny_workspace.dataset), "tiny", weights=str(source), epochs=2), run)
    assert report is not None and report.epochs_done == 2


def _r50_run(folder: Path) -> Path:
    folder.mkdir()
    config = RunConfig("x", model=ModelConfig(arch="resnet50", weights="none"))
    save_checkpoint(folder / "best.pt", build_model(config.model), config, epoch=0)
    return folder


@pytest.mark.parametrize("kind", ["missing", "empty_folder", "junk_file", "other_arch"])
def test_bad_weights_are_one_line_exit_2(tiny_workspace, tmp_path, capsys, kind):
    weights = {"missing": lambda: tmp_path / "no-such-run",
               "empty_folder": lambda: (tmp_path / "empty").mkdir() or tmp_path / "empty",
               "junk_file": lambda: (tmp_path / "junk.pt").write_bytes(b"junk") and tmp_path / "junk.pt",
               "other_arch": lambda: _r50_run(tmp_path / "r50")}[kind]()
    run = tmp_path / "run"
    code = main(["train", "--data", str(tiny_workspace.dataset), "--run", str(run), "--preset", "tiny",
                 "--weights", str(weights), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and str(weights) in err[0], err
    assert "Traceback" not in err[0]
    assert not RunPaths(run).config.exists()  # a retry with good weights is not "other settings"


def test_other_arch_names_both(tmp_path):
    folder = _r50_run(tmp_path / "r50")
    with pytest.raises(WeightsError, match="resnet50.*resnet18"):
        build_model(ModelConfig(weights=str(folder)))
