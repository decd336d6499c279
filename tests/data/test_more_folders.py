"""Several dataset folders in one run (`train --data A --data B`): the config records them
(runs and checkpoints from before still load), the listing joins them with B's films named by
absolute path, and the app may open B's films because a run of the workspace names B."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.config import ConfigError, RunConfig, make_run_config
from core.data.access import RUNS_DIR, allowed_roots, dataset_file
from core.data.dataset import DatasetError, scan_folders
from core.data.imageio import ImageReadError
from core.runs.workspace import Workspace
from tests.archives import flat_films


def test_a_config_from_before_more_data_loads_and_a_new_one_round_trips() -> None:
    old = {"data": "/d", "preset": "tiny", "model": {"arch": "resnet18"}}  # config.json of an old run
    assert RunConfig.from_dict(old).more_data == () and RunConfig.from_dict(old).folders == ("/d",)
    config = make_run_config("/d", "tiny", more_data=["/e", "/f"])
    assert config.folders == ("/d", "/e", "/f")
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ConfigError, match="more_data must be a list"):
        RunConfig.from_dict({"data": "/d", "more_data": "/e"})
    with pytest.raises(ConfigError, match=r"more_data\[\] must be a string"):
        RunConfig.from_dict({"data": "/d", "more_data": [3]})


def test_later_folders_are_named_by_absolute_path(tmp_path: Path) -> None:
    a, b = flat_films(tmp_path / "a", 3, 0), flat_films(tmp_path / "b", 2, 1)  # same file names
    ds = scan_folders([a, b])
    assert ds.root == a.resolve()
    assert [s.path for s in ds.samples] == ["film00.png", "film01.png", "film02.png",
                                            *(str(b.resolve() / f) for f in ("film00.png", "film01.png",
                                                                            "film02.jpg"))]
    assert all(ds.absolute(s).is_file() for s in ds.samples)
    assert scan_folders([a]) == scan_folders([str(a)])  # one folder: as scan_dataset lists it
    (b / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds no image files"):
        scan_folders([a, b / "empty"])
    with pytest.raises(DatasetError, match="inside --data"):
        scan_folders([b, b / "empty"])


def test_the_app_may_open_the_later_folders_of_the_workspaces_runs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CXR_ALLOWED_ROOTS", "")  # the workspace only, and what its runs name
    ws = Workspace(tmp_path / "ws")
    assert ws.runs_dir == ws.root / RUNS_DIR
    a, b = flat_films(tmp_path / "a", 1, 0), flat_films(tmp_path / "b", 1, 0)
    film = str(b.resolve() / "film00.png")
    with pytest.raises(ImageReadError, match="outside the dataset folder and the folders"):
        dataset_file(a, film, allowed_roots(ws.root))
    run = ws.runs_dir / "two"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(make_run_config(str(a), "tiny", more_data=[str(b)]).to_dict()))
    (ws.runs_dir / "damaged").mkdir()
    (ws.runs_dir / "damaged" / "config.json").write_text("{not json")
    assert allowed_roots(ws.root) == (ws.root.resolve(), b.resolve())
    assert dataset_file(a, film, allowed_roots(ws.root)) == Path(film)


def test_top_folder_keeps_a_later_folders_films_apart_by_hand():
    """The Map's and the Films page's folder of a later --data folder's film read "(none)": an
    absolute path had no top folder."""
    from core.data.overview import top_folder

    assert top_folder("Normal/a.png") == "Normal"
    assert top_folder("a.png") == ""
    assert top_folder("/data/kermany/Normal/b.jpeg") == "/data/kermany/Normal"
    assert top_folder("/b.png") == "/"
