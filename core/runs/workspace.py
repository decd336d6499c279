"""The workspace folder: datasets, runs, the review database and which ones are active."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.data.dataset import scan_dataset
from core.errors import UserError
from core.files import atomic_write_json, read_json
from core.run_folder import RunPaths, list_runs, read_status

DEFAULT_WORKSPACE = "workspace"
DEMO_NAME = "demo-synthetic"
ENV_VAR = "CXR_WORKSPACE"


class WorkspaceError(UserError):
    """The workspace folder cannot be used, or its workspace.json is damaged (one line)."""


def workspace_root(path: str | Path | None = None) -> Path:
    """The given folder, else $CXR_WORKSPACE, else ./workspace."""
    return Path(path or os.environ.get(ENV_VAR) or DEFAULT_WORKSPACE).expanduser().resolve()


def check_workspace_folder(path: str | Path) -> Path:
    """`path` if a workspace can live there: an existing folder, or one that can be made.

    Raises:
        WorkspaceError: a name the file system cannot hold (over 255 bytes a name, or too
            long a path), or a file in the way; one line that names it.
    """
    folder = Path(path)
    try:
        is_dir = folder.is_dir()
        if not is_dir and folder.exists():
            raise WorkspaceError(f"{_shown(folder)} is a file, not a workspace folder")
    except OSError as e:
        why = (e.strerror or type(e).__name__).lower()
        raise WorkspaceError(f"cannot use this workspace folder ({why}): {_shown(folder)}") from None
    return folder


def _shown(path: Path) -> str:
    """A path short enough to read in one line: a 300-character name is cut, its length said."""
    text = str(path)
    return text if len(text) <= 160 else f"{text[:140]}… ({len(path.name)} characters)"


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
        """workspace.json's settings; {} before the first is saved.

        Raises:
            WorkspaceError: it is not a JSON object (it is left as it is: `update` raises too).
        """
        saved = read_json(self.settings_path, default=None)
        if saved is None and not self.settings_path.is_file():
            return {}
        if not isinstance(saved, dict):
            raise WorkspaceError(f"{self.settings_path} is damaged (not a JSON object); restore "
                                 "it from a copy or delete it to start the workspace afresh")
        return saved

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


@dataclass(frozen=True)
class RunSummary:
    """One row of the runs table: config, progress, best val loss, retrieval metrics.

    `baselines` maps a baseline's name to its (P@5, mAP@R). `to_dict()` is the flat row the
    tables show, with `<baseline>_p@5` and `<baseline>_map@r` columns.
    """

    run: str
    path: str
    state: str | None = None
    preset: str | None = None
    arch: str | None = None
    epochs: int | None = None
    image_size: int | None = None
    epochs_done: int | None = None
    best_val_loss: float | None = None
    wall_seconds: float | None = None
    precision_at_5: float | None = None
    map: float | None = None
    map_at_r: float | None = None
    baselines: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    same_patient_p1: float | None = None  # P@1 with relevant = another film of the patient
    same_patient_verified_p1: float | None = None  # the same, top results re-ranked by shared landmarks
    problem: str | None = None  # one line naming a damaged config.json or status.json

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "run": self.run, "path": self.path, "state": self.state, "preset": self.preset,
            "arch": self.arch, "epochs": self.epochs, "image_size": self.image_size,
            "epochs_done": self.epochs_done, "best_val_loss": self.best_val_loss,
            "wall_seconds": self.wall_seconds, "precision_at_5": self.precision_at_5,
            "map": self.map, "map_at_r": self.map_at_r, "same_patient_p@1": self.same_patient_p1,
            "same_patient_reranked_p@1": self.same_patient_verified_p1,
        }
        for name, (p5, map_r) in self.baselines.items():
            row[f"{name}_p@5"] = p5
            row[f"{name}_map@r"] = map_r
        return row


def run_summary(run_dir: Path) -> RunSummary:
    """The runs-table row of a run folder; missing or unreadable files leave fields None."""
    from core.retrieval.evaluate import load_evaluation

    paths = RunPaths(run_dir)
    config = read_json(paths.config, default=None)
    problem = None if isinstance(config, dict) or not paths.config.is_file() else (
        f"{paths.config} is damaged (not a JSON object); restore it or train a new run")
    config = _object(config)
    report = _object(read_json(paths.report, default={}))
    evaluation = load_evaluation(run_dir)
    train = _object(config.get("train"))
    scores = evaluation.scores if evaluation is not None else None
    status = read_status(run_dir)
    problem = status.get("error") if status.get("state") == "damaged" else problem
    return RunSummary(
        run_dir.name, str(run_dir), status.get("state"), config.get("preset"),
        _object(config.get("model")).get("arch"), train.get("epochs"), train.get("image_size"),
        report.get("epochs_done"), report.get("best_val_loss"), report.get("wall_seconds"),
        scores.precision_at_5 if scores else None, scores.map if scores else None,
        scores.map_at_r if scores else None,
        {name: (s.precision_at_5, s.map_at_r)
         for name, s in ((evaluation.baselines or {}) if evaluation else {}).items()},
        ((evaluation.same_patient or {}).get("precision_at_1") if evaluation else None),
        (((evaluation.same_patient or {}).get("verified") or {}).get("precision_at_1") if evaluation else None),
        problem)


def _object(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else {} (a damaged file leaves its fields None)."""
    return value if isinstance(value, dict) else {}
