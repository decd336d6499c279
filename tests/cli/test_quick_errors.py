"""A mistyped run or dataset folder is answered before a command loads torch (seconds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Each command with a run (or dataset) that does not exist; the message it must give.
CASES = [
    (["evaluate", "--run", "{missing}"], "not a run folder"),
    (["embed", "--run", "{missing}"], "not a run folder"),
    (["embed", "--run", "{missing}", "--out", "{tmp}/out"], "not a run folder"),
    (["search", "--run", "{missing}", "--image", "{tmp}/q.png"], "not a run folder"),
    (["duplicates", "--run", "{missing}"], "not a run folder"),
    (["duplicates-eval", "--run", "{missing}"], "not a run folder"),
    (["embed-archive", "--run", "{missing}", "--data", "{tmp}", "--out", "{tmp}/shards"], "not a run folder"),
    (["train", "--data", "{missing}", "--run", "{tmp}/run"], "dataset folder not found"),
]

# Runs main() and reports whether torch was imported by the time it returned.
PROBE = ("import sys\nfrom core.cli.main import main\ncode = main(sys.argv[1:])\n"
         "print('torch loaded' if 'torch' in sys.modules else 'torch not loaded')\nsys.exit(code)\n")


@pytest.mark.parametrize("args, message", CASES, ids=[c[0][0] + str(i) for i, c in enumerate(CASES)])
def test_a_missing_folder_is_one_line_before_torch_loads(tmp_path, args, message):
    argv = [a.format(missing=tmp_path / "no-such-run", tmp=tmp_path) for a in args]
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {message}: {tmp_path / 'no-such-run'}"]
    assert proc.stdout.strip() == "torch not loaded"
