"""The run folder: where a training run keeps its config, progress, checkpoints and outputs."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.files import atomic_write_json, read_json


class RunError(UserError):
    """A run folder is missing or incomplete (one-line message)."""


_FILES = {
    "config": "config.json", "status": "status.json", "metrics": "metrics.jsonl",
    "log": "train.log", "last": "last.pt", "best": "best.pt", "splits": "splits.csv",
    "report": "report.json", "evaluation": "evaluation.json", "embeddings": "embeddings.npy",
    "labels": "labels.npy", "items": "items.csv", "test_embeddings": "test_embeddings.npy",
    "test_labels": "test_labels.npy", "index": "index.faiss", "pid": "train.pid",
}


class RunPaths:
    """Names of the files in a run folder: `RunPaths(dir).best` is `dir/best.pt`, and so on."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        for name, filename in _FILES.items():
            setattr(self, name, self.root / filename)

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


def read_status(run_dir: str | Path) -> dict[str, Any]:
    """The run's status; a 'running' run whose process is gone reads as 'interrupted'."""
    paths = RunPaths(Path(run_dir))
    status = read_json(paths.status, default=None) or {"state": "new"}
    if status.get("state") in ("starting", "running", "embedding") and not pid_alive(status.get("pid")):
        status = {**status, "state": "interrupted"}
    return status


def list_runs(runs_root: str | Path) -> list[Path]:
    """Run folders (those with a config.json) under `runs_root`, newest first."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if (p / "config.json").is_file()]
    return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)
