"""Every bad and unusual input through the CLI: valid ones answer, bad ones get one line.

Also a dataset folder that mixes bad files in: training skips and lists them, never fails.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import bad_inputs

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return bad_inputs.build_all(tmp_path_factory.mktemp("cases"))


def _search_in_process(run: Path, f: Path, capsys) -> tuple[int, str, str]:
    """The CLI's own entry point (argparse, error handling) without a new interpreter each time."""
    from core.cli.main import main

    code = main(["search", "--run", str(run), "--image", str(f), "-k", "2", "--json"])
    out, err = capsys.readouterr()
    return code, out, err


def test_valid_unusual_images_are_answered(tiny_workspace, cases, capsys):
    for name in bad_inputs.VALID_CASES:
        code, out, err = _search_in_process(tiny_workspace.run_dir, cases[name], capsys)
        assert code == 0, f"{name}: {err}"
        assert len(json.loads(out)["results"]) == 2, name


def test_bad_images_get_one_line(tiny_workspace, cases, capsys):
    for name in bad_inputs.BAD_CASES:
        code, _, err = _search_in_process(tiny_workspace.run_dir, cases[name], capsys)
        lines = err.strip().splitlines()
        assert code == 2, f"{name}: {err}"
        assert len(lines) == 1 and lines[0].startswith("error:"), name


@pytest.mark.parametrize("case, code", [("cmyk_jpeg", 0), ("dicom_multiframe", 0),
                                        ("truncated_png", 2), ("dicom_no_pixels", 2)])
def test_real_process_answers_or_prints_one_line(tiny_workspace, cases, case, code):
    proc = cli("search", "--run", str(tiny_workspace.run_dir), "--image", str(cases[case]), "--json")
    assert proc.returncode == code, proc.stderr
    if code:
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_training_skips_and_lists_bad_files(tiny_workspace, cases, tmp_path):
    data = tmp_path / "mixed"
    shutil.copytree(tiny_workspace.dataset, data, ignore=shutil.ignore_patterns("manifest.csv"))
    bad = [cases[n] for n in ("truncated_png", "text_as_png", "zero_byte", "bomb_png")]
    for i, f in enumerate(bad):
        shutil.copy(f, data / "Normal" / f"bad {i} {f.name}")
    run = tmp_path / "run"
    proc = cli("train", "--data", str(data), "--run", str(run), "--preset", "tiny", "--epochs", "1")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((run / "report.json").read_text())
    skipped = {Path(s["path"]).name for s in report["skipped"]}
    assert {f"bad {i} {f.name}" for i, f in enumerate(bad)} <= skipped
    assert report["n_skipped"] == len(report["skipped"]) >= 4


# ---- a damaged config.json: every command that reads it says so in one line (issue 28) -----

def private_run(src: Path, dest: Path) -> Path:
    """A copy of a run folder: big files (checkpoints, arrays, indexes) hard-linked, since they
    are only ever replaced by rename, never written in place; the rest copied."""
    def copy(s: str, d: str) -> None:
        if Path(s).suffix in (".pt", ".npy", ".faiss", ".npz"):
            import os

            os.link(s, d)
        else:
            shutil.copy2(s, d)

    shutil.copytree(src, dest, copy_function=copy)
    return dest


def _wrong_types(run: Path) -> str:
    saved = json.loads((run / "config.json").read_text())
    saved["model"], saved["train"]["epochs"] = "resnet18", "x"
    return json.dumps(saved)


CONFIGS = {"garbage": lambda run: "garbage{", "list": lambda run: "[1, 2]",
           "wrong_types": _wrong_types}


@pytest.mark.parametrize("content", CONFIGS)
def test_a_damaged_config_json_is_one_line_naming_it(tiny_workspace, content, tmp_path, capsys):
    from core.cli.main import main

    run = private_run(tiny_workspace.run_dir, tmp_path / "run")
    (run / "config.json").write_text(CONFIGS[content](tiny_workspace.run_dir))
    films = tmp_path / "new"
    films.mkdir()
    image = next(tiny_workspace.dataset.rglob("*.png"))
    shutil.copy(image, films / "new.png")
    commands = {
        "add": ["add", "--run", str(run), "--data", str(films)],
        "duplicates": ["duplicates", "--run", str(run)],
        "embed": ["embed", "--run", str(run)],
        "train": ["train", "--data", str(tiny_workspace.dataset), "--run", str(run),
                  "--preset", "tiny", "--epochs", "1"],
        "search": ["search", "--run", str(run), "--image", str(image)],
        "evaluate": ["evaluate", "--run", str(run), "--no-baselines"],
    }
    for name, argv in commands.items():
        code, (_, err) = main(argv), capsys.readouterr()
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, (name, err)
        assert lines[0].startswith("error:") and str(run / "config.json") in lines[0], (name, err)
    assert (run / "config.json").read_text() == CONFIGS[content](tiny_workspace.run_dir)  # kept


def _nan_in_embeddings(run: Path) -> None:
    import numpy as np

    from core.run_folder import RunPaths

    path = RunPaths(run).embeddings
    vectors = np.load(path)
    vectors[3] = np.nan
    path.unlink()  # hard-linked to the shared fixture: replace it, never write it in place
    np.save(path, vectors)


@pytest.mark.parametrize("damage, words", [("nul", "items.csv is damaged: a NUL byte in row 1"),
                                           ("nan", "embeddings.npy holds NaN")])
def test_a_damaged_served_set_is_one_line_saying_re_embed(tiny_workspace, tmp_path, capsys,
                                                          damage, words):
    from core.cli.main import main
    from core.run_folder import RunPaths

    run = private_run(tiny_workspace.run_dir, tmp_path / "run")
    items = RunPaths(run).items
    if damage == "nul":
        rows = items.read_text(encoding="utf-8").splitlines(True)
        rows[1] = rows[1].replace("/", "/\0", 1)
        items.write_text("".join(rows), encoding="utf-8")
    else:
        _nan_in_embeddings(run)
    for argv in (["duplicates", "--run", str(run)], ["evaluate", "--run", str(run), "--no-baselines"]):
        code, (_, err) = main(argv), capsys.readouterr()
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and words in lines[0], (argv[0], err)
        assert f"embed --run {run}" in lines[0]


@pytest.mark.parametrize("content", ["[1, 2]", "garbage{"])
def test_a_damaged_workspace_json_is_one_line_and_kept(tmp_path, capsys, content):
    from core.cli.main import main

    settings = tmp_path / "workspace.json"
    settings.write_text(content)
    code, (_, err) = main(["demo-workspace", str(tmp_path)]), capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and f"{settings} is damaged" in lines[0], err
    assert settings.read_text() == content and not (tmp_path / "datasets").exists()


def test_a_300_character_workspace_is_one_line(tmp_path, capsys):
    from core.cli.main import main

    code, (_, err) = main(["demo-workspace", str(tmp_path / ("w" * 300))]), capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "File name too long" in lines[0], err
