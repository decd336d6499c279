"""A workspace's runs as the app lists them: which are usable, what each was trained on, deletion."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from core.files import read_json
from core.run_folder import RunError, RunPaths, hold_run_lock, list_runs, pid_alive, read_status
from core.runs.workspace import Workspace

BUSY_STATES = ("starting", "running", "embedding", "evaluating")


@dataclass(frozen=True)
class ModelData:
    """The data a run's model was trained on, against the workspace's current dataset."""

    path: str  # the training data folder ('' when the run does not say)
    synthetic: bool  # the generated demo set (its folder holds demo.json)
    differs: bool  # True when a current dataset is set and it is another folder
    problem: str = ""  # one line naming a damaged config.json ('' when it reads)

    @property
    def name(self) -> str:
        """The folder's name, or 'unknown data'."""
        return Path(self.path).name if self.path else "unknown data"

    def note(self) -> str:
        """One plain line: 'Model trained on <name> (SYNTHETIC phantoms).', or what is damaged."""
        if self.problem:
            return self.problem
        kind = " (SYNTHETIC phantoms)" if self.synthetic else ""
        return f"Model trained on {self.name}{kind}."

    def warning(self, current_synthetic: bool) -> str | None:
        """Why its answers may mislead on the current dataset, None when they match."""
        if not self.differs:
            return None
        if self.synthetic and not current_synthetic:
            return (f"This model was trained on SYNTHETIC phantoms ({self.name}), not on the current "
                    "dataset: its answers to real films are not meaningful. Train one on the Train page.")
        return (f"This model was trained on {self.name}, not on the current dataset; its index holds "
                "that folder's images. Train one on the Train page to search the current dataset.")


def finished_runs(runs_dir: str | Path) -> list[Path]:
    """Runs with an index (usable for search), newest first."""
    return [r for r in list_runs(runs_dir) if RunPaths(r).index.is_file()]


def model_data(run_dir: str | Path, current: str | Path | None) -> ModelData:
    """What the run was trained on (its config's data folder) and whether that is `current`."""
    path = RunPaths(Path(run_dir)).config
    config = read_json(path, default=None)
    if config is None and not path.is_file():
        config = {}
    if not isinstance(config, dict):
        return ModelData("", False, False, f"{path} is damaged (not a JSON object); the data "
                                           "this model was trained on is unknown")
    data = str(config.get("data") or "")
    synthetic = bool(data) and (Path(data) / "demo.json").is_file()
    differs = bool(data) and current is not None and _resolved(data) != _resolved(current)
    return ModelData(data, synthetic, differs)


def _resolved(path: str | Path) -> Path:
    try:
        return Path(path).expanduser().resolve()
    except OSError:
        return Path(path)


def delete_run(ws: Workspace, run_dir: str | Path) -> None:
    """Delete a run folder of the workspace, with everything in it.

    Raises:
        RunError: the folder is not one of the workspace's runs, it is the active model, or a
            job is working in it.
    """
    run = _resolved(run_dir)
    runs = {_resolved(r) for r in list_runs(ws.runs_dir)}
    if run not in runs:
        raise RunError(f"{Path(run_dir).name} is not a run of this workspace")
    active = ws.active_run
    if active is not None and _resolved(active) == run:
        raise RunError(f"{run.name} is the active model; make another run active first")
    status = read_status(run)
    if status.get("state") in BUSY_STATES and pid_alive(status.get("pid")):
        raise RunError(f"{run.name} is still working ({status.get('state')}); stop it first")
    try:
        lock = hold_run_lock(RunPaths(run), wait=0.2, exists=True)
        with lock:  # no `add`, `embed` or search writes into it while it goes
            gone = run.with_name(f".{run.name}.deleted-{os.getpid()}")
            os.replace(run, gone)  # one rename: the run leaves the list whole, never half
            shutil.rmtree(gone, ignore_errors=True)
    except RunError:
        raise RunError(f"{run.name} is in use by another process (adding films, embedding or a "
                       "duplicate search); wait for it to end, then delete it") from None
