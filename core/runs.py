"""The run folder: where a training run keeps its config, progress, checkpoints and outputs."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


class RunError(ValueError):
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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path, default: Any = None) -> Any:
    """The JSON in `path`, or `default` when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def append_jsonl(path: Path, obj: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(obj, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; a torn last line (crash mid-write) is ignored."""
    rows = []
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    except OSError:
        pass
    return rows


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
