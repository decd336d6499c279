"""A run is its RunConfig; device, precision and workers are a Runtime; one option list."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.config import (
    OPTIONS,
    PRESETS,
    ConfigError,
    RunConfig,
    Runtime,
    make_run_config,
    split_options,
)
from core.files import atomic_write_json
from core.run_folder import RunPaths


def test_presets_are_whole_run_configs():
    assert make_run_config("/d", "quick") == replace(PRESETS["quick"], data="/d")
    assert make_run_config("/d", "tiny").model.weights == "none"  # from scratch: offline
    assert make_run_config("/d", "seed").model.weights == "imagenet"
    assert make_run_config("/d", "tiny", weights="imagenet", epochs=3).train.epochs == 3
    with pytest.raises(ConfigError, match="unknown training option device"):
        make_run_config("/d", "tiny", device="cpu")  # a runtime choice, not part of the run


def test_runtime_is_not_part_of_the_saved_config():
    saved = make_run_config("/d", "tiny").to_dict()
    assert not {"device", "precision", "num_workers", "workers"} & set(saved["train"])
    old = {**saved, "train": {**saved["train"], "device": "cuda", "precision": "bf16", "num_workers": 4}}
    assert RunConfig.from_dict(old) == RunConfig.from_dict(saved)  # config.json from before still loads


def test_a_run_resumes_with_other_runtime_choices(tmp_path):
    from core.runs.pipeline import _check_resume

    config = make_run_config("/d", "tiny")
    old = config.to_dict()
    old["train"].update(device="cuda", precision="bf16", num_workers=4)  # started on a GPU
    atomic_write_json(RunPaths(tmp_path).config, old)
    assert _check_resume(RunPaths(tmp_path), config) == config
    with pytest.raises(Exception, match="other settings"):
        _check_resume(RunPaths(tmp_path), make_run_config("/d", "tiny", lr=0.5))


def test_split_options():
    recipe, runtime = split_options({"epochs": 3, "arch": None, "device": "cpu", "workers": 0})
    assert recipe == {"epochs": 3} and runtime == Runtime("cpu", "auto", 0)
    with pytest.raises(ConfigError, match="unknown training option optimiser"):
        split_options({"optimiser": "sgd"})
    with pytest.raises(ConfigError, match="unknown --precision 'fp16'"):
        split_options({"precision": "fp16"})


def test_cli_and_train_page_share_the_option_list():
    from core.cli.main import build_parser
    from core.jobs.training import train_args

    parser = build_parser()
    train = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "train")[1]
    flags = {s for a in train._actions for s in a.option_strings}
    assert {o.flag for o in OPTIONS} <= flags
    args = train_args("/d", "tiny", epochs=3, device="cpu", workers=0)
    assert args[-6:] == ["--device", "cpu", "--epochs", "3", "--workers", "0"]
    parsed = parser.parse_args(["train", "--run", "/r", *args])
    assert (parsed.epochs, parsed.device, parsed.workers, parsed.lr) == (3, "cpu", 0, None)


def test_weight_decay_is_an_option_saved_with_the_run_and_given_to_adam(tmp_path):
    import torch

    from core.cli.main import build_parser
    from core.train.trainer import Trainer

    parsed = build_parser().parse_args(["train", "--data", "/d", "--run", "/r", "--weight-decay", "1e-4"])
    config = make_run_config("/d", "tiny", weight_decay=parsed.weight_decay)
    assert RunConfig.from_dict(config.to_dict()).train.weight_decay == 1e-4
    old = config.to_dict()
    del old["train"]["weight_decay"]  # a run saved before the option was offered
    assert RunConfig.from_dict(old).train.weight_decay == 0.0
    with pytest.raises(ConfigError, match="weight-decay"):
        make_run_config("/d", "tiny", weight_decay=-0.1)
    images = torch.zeros(4, 1, 32, 32, dtype=torch.uint8)
    trainer = Trainer(config, RunPaths(tmp_path / "run"), images, images[:2], torch.device("cpu"), "fp32")
    assert trainer.optimizer.param_groups[0]["weight_decay"] == 1e-4


# ---- a damaged config.json: one line naming the file (issue 28, item 9) ---------------------

def _saved(**changes) -> dict:
    d = make_run_config("/d", "tiny").to_dict()
    for key, value in changes.items():
        section, _, name = key.partition(".")
        if name:
            d[section][name] = value
        else:
            d[section] = value
    return d


@pytest.mark.parametrize("content, words", [
    ("garbage{", "not valid JSON"),
    ("[1, 2]", "a JSON list"),
    ("null", "a JSON null"),
    (None, "not valid JSON"),  # an empty file
])
def test_load_run_config_names_a_damaged_file(tmp_path, content, words):
    from core.config import load_run_config

    path = tmp_path / "config.json"
    path.write_text(content or "", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_run_config(path)
    assert str(path) in str(e.value) and words in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("changes, words", [
    ({"train.epochs": "x"}, "train.epochs must be an integer, got 'x'"),
    ({"train.epochs": True}, "train.epochs must be an integer"),
    ({"train.lr": "fast"}, "train.lr must be a number"),
    ({"train.cosine_schedule": "yes"}, "train.cosine_schedule must be true or false"),
    ({"model": "resnet18"}, "model must be a JSON object"),
    ({"model.arch": 18}, "model.arch must be a string"),
    ({"model.arch": "vgg"}, "unknown model.arch 'vgg'"),
    ({"data": 5}, "data must be a string"),
    ({"augment": [1]}, "augment must be a JSON object"),
])
def test_wrong_types_in_config_json_are_named(tmp_path, changes, words):
    from core.config import load_run_config

    path = tmp_path / "config.json"
    atomic_write_json(path, _saved(**changes))
    with pytest.raises(ConfigError) as e:
        load_run_config(path)
    assert str(path) in str(e.value) and words in str(e.value), str(e.value)
    d = _saved(**changes)
    with pytest.raises(ConfigError, match="must be|unknown"):
        RunConfig.from_dict(d)


def test_missing_data_and_non_dict_are_config_errors():
    with pytest.raises(ConfigError, match="no 'data'"):
        RunConfig.from_dict({"preset": "tiny"})
    with pytest.raises(ConfigError, match="a JSON list"):
        RunConfig.from_dict([1, 2])  # type: ignore[arg-type]


def test_a_good_config_json_round_trips_and_ints_count_as_floats(tmp_path):
    from core.config import load_run_config

    config = make_run_config("/d", "tiny")
    path = tmp_path / "config.json"
    atomic_write_json(path, config.to_dict())
    assert load_run_config(path) == config
    atomic_write_json(path, _saved(**{"train.lr": 1}))
    loaded = load_run_config(path)
    assert loaded.train.lr == 1.0 and isinstance(loaded.train.lr, float)
