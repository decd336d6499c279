"""Shared fixtures: a tiny workspace with a finished run, built once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class TinyWorkspace:
    """A workspace holding the synthetic demo set (per_class=6, 64 px) and one finished run."""

    root: Path  # the workspace folder ($CXR_WORKSPACE while a test uses the fixture)
    run_dir: Path  # root/runs/tiny: trained with the `tiny` preset, indexed and evaluated
    dataset: Path  # root/datasets/demo-synthetic


@pytest.fixture(scope="session")
def _tiny_workspace_built(tmp_path_factory: pytest.TempPathFactory) -> TinyWorkspace:
    from core.config import make_run_config
    from core.demo.dataset import write_demo_dataset
    from core.runs.pipeline import train_run
    from core.runs.workspace import DEMO_NAME, Workspace

    root = tmp_path_factory.mktemp("tiny_workspace")
    ws = Workspace(root)
    data = write_demo_dataset(ws.datasets_dir / DEMO_NAME, per_class=6, size=64, seed=0).root
    run_dir = ws.runs_dir / "tiny"
    train_run(make_run_config(str(data), "tiny"), run_dir)  # ~20 s on 2 CPU cores
    ws.update(dataset=str(data), synthetic=True, active_run=str(run_dir))
    return TinyWorkspace(root, run_dir, data)


@pytest.fixture
def tiny_workspace(_tiny_workspace_built: TinyWorkspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[TinyWorkspace]:
    """The shared tiny workspace, with CXR_WORKSPACE pointing at it for this test.

    Built once per session (training takes ~20 s); tests must not delete or retrain it.
    Settings a test changes (Workspace.update) are put back afterwards.
    """
    from core.files import atomic_write_json, read_json

    settings_path = _tiny_workspace_built.root / "workspace.json"
    saved = read_json(settings_path, default={})
    monkeypatch.setenv("CXR_WORKSPACE", str(_tiny_workspace_built.root))
    yield _tiny_workspace_built
    atomic_write_json(settings_path, saved)


# Folders and fixtures whose tests train a model, start the app or spawn processes: `make
# test-fast` (-m "not slow") leaves them out; `make test` runs everything.
SLOW_DIRS = {"app", "cli", "jobs", "train"}
SLOW_FILES = {"test_ray_engine.py", "test_run_lifecycle.py", "test_light_import.py",
              "test_chaos.py"}
SLOW_FIXTURES = {"tiny_workspace", "_tiny_workspace_built", "small_run"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        slow = (path.parent.name in SLOW_DIRS or path.name in SLOW_FILES
                or SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
                or item.get_closest_marker("browser") or item.get_closest_marker("realdata"))
        if slow:
            item.add_marker(pytest.mark.slow)
