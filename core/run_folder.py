"""The run folder: where a training run keeps its config, progress, checkpoints and outputs."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.files import atomic_write_json, lock_held, read_json, try_lock


class RunError(UserError):
    """A run folder is missing or incomplete (one-line message)."""


_FILES = {
    "config": "config.json", "status": "status.json", "metrics": "metrics.jsonl",
    "log": "train.log", "last": "last.pt", "best": "best.pt", "splits": "splits.csv",
    "report": "report.json", "evaluation": "evaluation.json", "embeddings": "embeddings.npy",
    "labels": "labels.npy", "items": "items.csv", "test_embeddings": "test_embeddings.npy",
    "test_labels": "test_labels.npy", "index": "index.faiss", "pid": "train.pid",
    "lock": "run.lock", "added": "added.csv", "duplicates": "duplicates.json",
}
# The served set: written together as one generation under artifacts/ (core.index.artifacts).
ARTIFACT_FILES = ("embeddings", "labels", "items", "test_embeddings", "test_labels", "index")
ARTIFACTS_DIR = "artifacts"
CURRENT_FILE = "current.json"
ACTIVE_STATES = ("starting", "running", "embedding", "indexing", "evaluating")
_CURRENT = "current"


def current_generation(root: str | Path) -> str:
    """The served artifact generation, e.g. 'g000003'; '' for a run folder from before them."""
    info = read_json(Path(root) / ARTIFACTS_DIR / CURRENT_FILE, default=None)
    gen = info.get("generation") if isinstance(info, dict) else None
    return gen if isinstance(gen, str) and gen[:1] == "g" and gen[1:].isdigit() else ""


class RunPaths:
    """Names of the files in a run folder: `RunPaths(dir).best` is `dir/best.pt`, and so on.

    The served files (ARTIFACT_FILES, plus `model`, the checkpoint that made them, and
    `manifest`) are those of the generation current when the RunPaths is made, so one
    RunPaths reads one consistent set even while a new one is being switched in. A folder
    without generations (older runs, or a plain output folder) keeps them at the top level.

    Args:
        root: the run folder.
        generation: 'current' (default), a generation name, or None for the top level.
    """

    def __init__(self, root: str | Path, generation: str | None = _CURRENT) -> None:
        self.root = Path(root)
        for name, filename in _FILES.items():
            setattr(self, name, self.root / filename)
        gen = current_generation(self.root) if generation == _CURRENT else (generation or "")
        self.generation = gen
        served = self.root / ARTIFACTS_DIR / gen if gen else self.root
        for name in ARTIFACT_FILES:
            setattr(self, name, served / _FILES[name])
        self.model = served / "model.pt" if gen else (self.best if self.best.is_file() else self.last)
        self.manifest = served / "manifest.json"

    generation: str
    model: Path
    manifest: Path
    lock: Path
    added: Path
    duplicates: Path  # the last duplicate search (core.duplicates.search), the review queue

    config: Path
    status: Path
    metrics: Path
    log: Path
    last: Path
    best: Path
    splits: Path
    report: Path
    evaluation: Path
    embeddings: Path
    labels: Path
    items: Path
    test_embeddings: Path
    test_labels: Path
    index: Path
    pid: Path


def write_status(paths: RunPaths, state: str, **fields: Any) -> None:
    """status.json: state (starting|running|finished|failed|stopped|interrupted), epoch, step, total, eta_s."""
    atomic_write_json(paths.status, {"state": state, "updated": time.time(), "pid": os.getpid(), **fields})


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    try:  # a zombie child counts as gone
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def run_alive(paths: RunPaths, pid: int | None = None) -> bool:
    """True while a process works on the run: it holds the run's lock (`hold_run_lock`).

    Folders from before the lock fall back to the pid in status.json.
    """
    if paths.lock.is_file():
        return lock_held(paths.lock)
    return pid_alive(pid)


def read_status(run_dir: str | Path) -> dict[str, Any]:
    """The run's status, from liveness: a run in any working state (ACTIVE_STATES) whose
    process is gone reads as 'interrupted'. No status.json reads as 'new'; one that is not a
    JSON object reads as 'damaged', its `error` the one line that names it."""
    paths = RunPaths(Path(run_dir), generation=None)
    status = read_json(paths.status, default=None)
    if status is None and not paths.status.is_file():
        return {"state": "new"}
    if not isinstance(status, dict):
        return {"state": "damaged", "error": f"{paths.status} is damaged (not a JSON object); "
                                             "the run's state is unknown"}
    if status.get("state") in ACTIVE_STATES and not run_alive(paths, status.get("pid")):
        status = {**status, "state": "interrupted"}
    return status


@contextmanager
def hold_run_lock(paths: RunPaths, wait: float = 2.0, exists: bool = False) -> Iterator[None]:
    """Hold the run folder's lock while training, embedding, adding to or deleting it.

    The app's jobs and the CLI both come through here, so two processes never write one run.
    The lock is an `flock`: the kernel drops it when the holder dies, kill -9 included, and
    that is how `read_status` tells a live run from an interrupted one.

    Args:
        paths: the run's files.
        wait: seconds to wait for another holder.
        exists: the run must exist (hold a config.json) before and after the wait: a run
            deleted while this process waited is refused instead of being written into.

    Raises:
        RunError: another process holds the run, or (`exists`) it is not or no longer a run.
    """
    if exists and not paths.config.is_file():
        raise RunError(f"not a run folder (no config.json): {paths.root}")
    paths.root.mkdir(parents=True, exist_ok=True)
    fd = try_lock(paths.lock, wait=wait)
    if fd is None:
        status = read_json(paths.status, default=None)
        pid = status.get("pid") if isinstance(status, dict) else None
        who = f" (pid {pid})" if pid and pid_alive(pid) else ""
        raise RunError(f"run {paths.root} is in use by another process{who}; wait for it to "
                       "end or stop it")
    try:
        if exists and not paths.config.is_file():
            raise RunError(f"run {paths.root} was deleted while this command waited for it")
        yield
    finally:
        os.close(fd)


def list_runs(runs_root: str | Path) -> list[Path]:
    """Run folders (those with a config.json) under `runs_root`, newest first."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if (p / "config.json").is_file()]
    return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)
