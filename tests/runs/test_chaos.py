"""Kill train, embed (with its index), evaluate and duplicates at random points; every resume must leave a
run folder that agrees with itself (issue 10's chaos test).

A kill is simulated in-process, which keeps the test inside a minute on two cores: from a
seeded random durable write on (an fsync or a rename), every further fsync, rename and link
raises `Killed`, so the "dead" process writes nothing more, as after kill -9; nothing it
wrote before is undone. One real SIGKILL of a `python -m core train` subprocess checks the
same against the kernel. After each kill the same command runs again to completion (a
resume), and the invariants are checked:
- metrics.jsonl: one row per epoch, 1..N, valid JSON;
- the served artifact set opens (ntotal = rows = items, one generation, its checkpoint);
- status.json reads what is true (no live process: never 'running');
- searching a known image of the set finds that image first.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.cli.main import main
from core.duplicates import load_result
from core.files import read_jsonl
from core.index.artifacts import open_artifact_set
from core.retrieval.search import Searcher
from core.run_folder import ACTIVE_STATES, RunPaths, read_status

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("CXR_CHAOS_SEED", "10"))
ROUNDS = int(os.environ.get("CXR_CHAOS_ROUNDS", "8"))
pytestmark = pytest.mark.slow


class Killed(BaseException):
    """The simulated kill -9 (a BaseException: no `except Exception` catches it)."""


class Injector:
    """Counts durable writes; from write number `at` on, every one raises Killed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count, self.at = 0, None
        for name in ("fsync", "replace", "link", "rename"):
            real = getattr(os, name)
            monkeypatch.setattr(os, name, self._wrap(real))

    def _wrap(self, real):
        def call(*args, **kwargs):
            self.count += 1
            if self.at is not None and self.count >= self.at:
                raise Killed
            return real(*args, **kwargs)
        return call

    def arm(self, at: int | None) -> None:
        self.count, self.at = 0, at


def _check(run: Path, data: Path, epochs: int) -> None:
    paths = RunPaths(run)
    epochs_logged = [r["epoch"] for r in read_jsonl(paths.metrics)]
    assert epochs_logged == list(range(1, epochs + 1)), epochs_logged
    for line in paths.metrics.read_text().splitlines():
        assert "NaN" not in line and "Infinity" not in line
    assert read_status(run)["state"] == "finished"
    assert not list(run.rglob("*.tmp"))
    served = open_artifact_set(run)
    assert served.index.ntotal == len(served.embeddings)
    known = served.embeddings.paths[len(served.embeddings) // 2]
    hits = Searcher(run).search(data / known, k=3)
    assert hits[0].path == known, (known, hits)


def test_random_kills_then_resume_keep_the_run_folder_consistent(tmp_path, monkeypatch):
    data = tmp_path / "data"
    assert main(["demo-data", str(data), "--per-class", "2", "--size", "32", "--seed", "2"]) == 0
    run = tmp_path / "run"
    train = ["train", "--data", str(data), "--run", str(run), "--preset", "tiny",
             "--workers", "0"]
    rng = random.Random(SEED)
    inject = Injector(monkeypatch)
    epochs = 1
    assert main([*train, "--epochs", str(epochs)]) == 0
    _check(run, data, epochs)
    stages = {
        "train": lambda: main([*train, "--epochs", str(epochs)]),
        "embed": lambda: main(["embed", "--run", str(run), "--device", "cpu"]),
        "evaluate": lambda: main(["evaluate", "--run", str(run), "--no-baselines"]),
        "duplicates": lambda: main(["duplicates", "--run", str(run), "--threshold", "0.99"]),
    }
    for _ in range(ROUNDS):
        stage = rng.choice(sorted(stages))
        if stage == "train" and epochs < 3 and rng.random() < 0.5:
            epochs += 1  # continue a finished run: more epochs, a new checkpoint and set
        inject.arm(rng.randint(1, 40))
        try:
            stages[stage]()
        except Killed:
            pass
        inject.arm(None)
        assert read_status(run)["state"] not in ACTIVE_STATES  # nobody holds the run now
        assert stages[stage]() == 0  # resume: the same command again
        _check(run, data, epochs)
        if stage == "duplicates":
            assert load_result(run) is not None


def test_sigkill_of_a_real_training_then_resume(tmp_path):
    data = tmp_path / "data"
    assert main(["demo-data", str(data), "--per-class", "2", "--size", "32", "--seed", "3"]) == 0
    run = tmp_path / "run"
    command = [sys.executable, "-m", "core", "train", "--data", str(data), "--run", str(run),
               "--preset", "tiny", "--workers", "0", "--epochs", "2"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not RunPaths(run).last.is_file():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert read_status(run)["state"] in ("interrupted", "new", "finished")
    assert main(command[3:]) == 0
    _check(run, data, 2)
