"""The workspace folder: datasets, runs, the review database and which ones are active."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.data.dataset import DatasetError, scan_dataset
from core.files import atomic_write_json, read_json
from core.run_folder import RunPaths, list_runs, read_status

DEFAULT_WORKSPACE = "workspace"
DEMO_NAME = "demo-synthetic"
ENV_VAR = "CXR_WORKSPACE"


def workspace_root(path: str | Path | None = None) -> Path:
    """The given folder, else $CXR_WORKSPACE, else ./workspace."""
    return Path(path or os.environ.get(ENV_VAR) or DEFAULT_WORKSPACE).expanduser().resolve()


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def settings_path(self) -> Path:
        return self.root / "workspace.json"

    @property
    def reviews_db(self) -> Path:
        return self.root / "reviews.sqlite"

    def settings(self) -> dict[str, Any]:
        return read_json(self.settings_path, default={}) or {}

    def update(self, **values: Any) -> None:
        atomic_write_json(self.settings_path, {**self.settings(), **values})

    @property
    def dataset_path(self) -> Path | None:
        value = self.settings().get("dataset")
        return Path(value) if value else None

    @property
    def active_run(self) -> Path | None:
        value = self.settings().get("active_run")
        if value and RunPaths(value).index.is_file():  # its served set (core.index.artifacts)
            return Path(value)
        for run in list_runs(self.runs_dir):  # newest finished run as a fallback
            if RunPaths(run).index.is_file():
                return run
        return None


@dataclass(frozen=True)
class WorkspaceInfo:
    root: Path
    dataset_name: str
    n_images: int
    synthetic: bool
    class_counts: dict[str, int] = field(default_factory=dict)


def ensure_demo_workspace(path: str | Path | None = None, per_class: int = 60) -> WorkspaceInfo:
    """Create the workspace with the synthetic demo dataset unless it already has a dataset."""
    from core.demo.dataset import write_demo_dataset

    ws = Workspace(workspace_root(path))
    ws.root.mkdir(parents=True, exist_ok=True)
    current = ws.dataset_path
    if current is None or not current.is_dir():
        demo = ws.datasets_dir / DEMO_NAME
        if not (demo / "manifest.csv").is_file():
            write_demo_dataset(demo, per_class=per_class, size=256, seed=0)
        ws.update(dataset=str(demo), synthetic=True)
        current = demo
    dataset = scan_dataset(current)
    return WorkspaceInfo(ws.root, current.name, len(dataset.samples),
                         bool(ws.settings().get("synthetic")), dataset.class_counts())


def run_summary(run_dir: Path) -> dict[str, Any]:
    """One row for the runs table: config, progress, best val loss and retrieval metrics."""
    config = read_json(run_dir / "config.json", default={}) or {}
    report = read_json(run_dir / "report.json", default={}) or {}
    evaluation = read_json(run_dir / "evaluation.json", default={}) or {}
    train = config.get("train", {})
    row: dict[str, Any] = {
        "run": run_dir.name, "path": str(run_dir), "state": read_status(run_dir).get("state"),
        "preset": config.get("preset"), "arch": config.get("model", {}).get("arch"),
        "epochs": train.get("epochs"), "image_size": train.get("image_size"),
        "epochs_done": report.get("epochs_done"), "best_val_loss": report.get("best_val_loss"),
        "wall_seconds": report.get("wall_seconds"),
    }
    for key in ("precision_at_5", "map", "map_at_r"):
        row[key] = evaluation.get(key)
    for name, scores in (evaluation.get("baselines") or {}).items():
        row[f"{name}_p@5"] = scores.get("precision_at_5")
        row[f"{name}_map@r"] = scores.get("map_at_r")
    return row


def workspace_status(path: str | Path | None = None) -> dict[str, Any]:
    """What the home page shows: dataset, class counts, splits, runs with their metrics."""
    ws = Workspace(workspace_root(path))
    status: dict[str, Any] = {"root": str(ws.root), "dataset": None, "runs": []}
    if ws.dataset_path is not None:
        try:
            dataset = scan_dataset(ws.dataset_path)
            status["dataset"] = {
                "path": str(dataset.root), "name": dataset.root.name, "layout": dataset.layout,
                "n_images": len(dataset.samples), "class_counts": dataset.class_counts(),
                "n_skipped": len(dataset.skipped), "has_patients": dataset.has_patients(),
                "synthetic": bool(ws.settings().get("synthetic")),
            }
        except DatasetError as e:
            status["dataset_error"] = str(e)
    runs = list_runs(ws.runs_dir)
    status["runs"] = [run_summary(r) for r in runs]
    active = ws.active_run
    status["active_run"] = str(active) if active else None
    if active is not None:
        report = read_json(active / "report.json", default={}) or {}
        status["split_counts"] = report.get("split_counts")
    return status
