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
