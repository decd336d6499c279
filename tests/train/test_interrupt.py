"""Training killed with SIGKILL: the run folder stays consistent and resume matches a clean run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.files import read_jsonl
from core.model.checkpoint import load_checkpoint
from core.run_folder import read_status

ROOT = Path(__file__).resolve().parents[2]


def _train(data: Path, run: Path, epochs: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "core", "train", "--data", str(data), "--run", str(run),
                             "--preset", "tiny", "--epochs", str(epochs)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from core.demo.dataset import write_demo_dataset

    root = tmp_path_factory.mktemp("kill") / "data"
    write_demo_dataset(root, per_class=8, size=64, seed=2)
    return root


def test_sigkill_then_resume_matches_uninterrupted(data, tmp_path):
    clean = tmp_path / "clean"
    assert _train(data, clean, 3).wait(timeout=600) == 0

    run = tmp_path / "killed"
    proc = _train(data, run, 3)
    deadline = time.time() + 600
    while not (run / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere inside epoch 2 (or its checkpoint write)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    # Liveness comes from the run's lock: loader workers forked by the killed process hold it
    # until they notice their parent is gone (a few seconds), and the run reads "running" until then.
    deadline = time.time() + 60
    while read_status(run)["state"] == "running" and time.time() < deadline:
        time.sleep(0.2)
    assert read_status(run)["state"] in ("interrupted", "finished")
    ckpt = load_checkpoint(run / "last.pt")  # never a truncated file
    assert ckpt["epoch"] >= 0

    assert _train(data, run, 3).wait(timeout=600) == 0
    assert read_status(run)["state"] == "finished"
    a, b = read_jsonl(clean / "metrics.jsonl"), read_jsonl(run / "metrics.jsonl")
    assert [r["epoch"] for r in b] == [1, 2, 3]
    for x, y in zip(a, b, strict=True):
        assert x["train_loss"] == pytest.approx(y["train_loss"], abs=2e-3)
        assert x["val_loss"] == pytest.approx(y["val_loss"], abs=2e-3)


def test_sigterm_stops_cleanly(data, tmp_path):
    run = tmp_path / "stopped"
    proc = _train(data, run, 50)
    deadline = time.time() + 600
    while read_status(run).get("state") != "running" and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=300) == 0
    assert read_status(run)["state"] == "stopped"
