"""`python -m core report`: the file is written, and bad input ends in one line with nothing lost."""

from __future__ import annotations

import pytest

from core.cli.main import main
from core.report import write as write_module
from tests.quality._runs import make_run, standard_films


@pytest.fixture
def run(tmp_path):
    return make_run(tmp_path, standard_films())


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


def test_writes_the_report_and_says_what_it_holds(run, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", "--run", str(run), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"wrote {out} (") and "13 films, 0 duplicate groups" in said
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_a_missing_run_is_one_line(tmp_path, capsys):
    assert main(["report", "--run", str(tmp_path / "nope"), "--out", str(tmp_path / "r.html")]) == 2
    assert _one_line(capsys) == f"error: not a run folder: {tmp_path / 'nope'}"


@pytest.mark.parametrize("where, says", [
    ("missing/r.html", "the folder {tmp}/missing does not exist"),
    ("afile/r.html", "{tmp}/afile is a file, not a folder"),
    (".", "it is a folder"),
])
def test_an_output_that_cannot_be_written_is_one_line_before_any_work(run, tmp_path, capsys, monkeypatch,
                                                                     where, says):
    (tmp_path / "afile").write_text("x")
    monkeypatch.setattr(write_module, "report_html", lambda *a, **k: pytest.fail("the run was read"))
    out = tmp_path / where
    assert main(["report", "--run", str(run), "--out", str(out)]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"error: cannot write the report to {out}") and says.format(tmp=tmp_path) in line


def test_a_failed_write_keeps_the_old_report_and_leaves_no_temp(run, tmp_path, capsys, monkeypatch):
    out = tmp_path / "r.html"
    out.write_text("the old report")
    def full_disk(path, text):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(write_module, "atomic_write_text", full_disk)
    assert main(["report", "--run", str(run), "--out", str(out)]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"error: cannot write the report to {out}:") and "full" in line
    assert out.read_text() == "the old report"
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


PROBE = ("import sys\nfrom core.cli.main import main\ncode = main(sys.argv[1:])\n"
         "print('torch loaded' if 'torch' in sys.modules else 'torch not loaded')\nsys.exit(code)\n")


@pytest.mark.parametrize("case", ["missing run", "missing folder"])
def test_bad_input_is_answered_before_torch_loads(run, tmp_path, case):
    """A typo answers at once: the run and --out are checked before the report's libraries load."""
    import subprocess
    import sys
    from pathlib import Path

    target = str(tmp_path / "nope") if case == "missing run" else str(run)
    out = tmp_path / ("r.html" if case == "missing run" else "missing/r.html")
    root = Path(__file__).resolve().parents[2]
    p = subprocess.run([sys.executable, "-c", PROBE, "report", "--run", target, "--out", str(out)],
                       cwd=root, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert p.stdout.strip() == "torch not loaded"
