"""Environmental failures end in one line, never a traceback (issue 10 case 7): a full or
read-only disk under train, embed, evaluate and duplicates; a corrupt or truncated index, a
deleted checkpoint and a malformed embeddings.npy under search and evaluate."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest

from core.cli.main import main
from core.run_folder import RunPaths, read_status


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("env")
    data, run = base / "data", base / "run"
    assert main(["demo-data", str(data), "--per-class", "2", "--size", "32", "--seed", "4"]) == 0
    assert main(["train", "--data", str(data), "--run", str(run), "--preset", "tiny",
                 "--epochs", "1", "--workers", "0"]) == 0
    return data, run


@pytest.fixture
def run_copy(finished, tmp_path) -> tuple[Path, Path]:
    data, run = finished
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return data, copy


def _one_line(capsys, code: int) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("failure,words", [(errno.ENOSPC, "the disk is full"),
                                           (errno.EROFS, "the file system is read-only")])
@pytest.mark.parametrize("command", ["train", "embed", "evaluate", "duplicates"])
def test_a_full_or_read_only_disk_is_one_line(command, failure, words, run_copy, monkeypatch, capsys):
    import core.files

    data, run = run_copy
    real = core.files._create_temp

    def refused(path):  # every atomic write starts with its temp file
        raise OSError(failure, "no", str(path.parent))

    argv = {"train": ["train", "--data", str(data), "--run", str(run), "--preset", "tiny",
                      "--epochs", "2", "--workers", "0"],
            "embed": ["embed", "--run", str(run), "--device", "cpu"],
            "evaluate": ["evaluate", "--run", str(run), "--no-baselines"],
            "duplicates": ["duplicates", "--run", str(run), "--threshold", "0.99"]}[command]
    capsys.readouterr()
    monkeypatch.setattr(core.files, "_create_temp", refused)
    code = main(argv)
    monkeypatch.setattr(core.files, "_create_temp", real)
    assert words in _one_line(capsys, code)
    assert read_status(run)["state"] != "running"


def _search(run: Path, data: Path) -> list[str]:
    image = next(p for p in sorted(data.rglob("*.png")))
    return ["search", "--run", str(run), "--image", str(image), "-k", "2"]


@pytest.mark.parametrize("damage", ["truncated_index", "garbage_index", "deleted_checkpoint",
                                    "malformed_embeddings", "embeddings_of_text"])
def test_damaged_served_files_are_one_line_for_search_and_evaluate(damage, run_copy, capsys):
    data, run = run_copy
    paths = RunPaths(run)
    if damage == "truncated_index":
        paths.index.write_bytes(paths.index.read_bytes()[:100])
    elif damage == "garbage_index":
        paths.index.write_bytes(b"not an index" * 50)
    elif damage == "deleted_checkpoint":
        paths.model.unlink()
        paths.best.unlink()
        paths.last.unlink()
    elif damage == "malformed_embeddings":
        paths.embeddings.write_bytes(paths.embeddings.read_bytes()[:90])
    else:
        paths.embeddings.write_text("hello")
    capsys.readouterr()
    assert "re-embed" in _one_line(capsys, main(_search(run, data))) or damage == "deleted_checkpoint"
    if damage in ("malformed_embeddings", "embeddings_of_text", "deleted_checkpoint"):
        _one_line(capsys, main(["evaluate", "--run", str(run), "--no-baselines"]))
