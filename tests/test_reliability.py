"""Bad options and damaged runs end in one line; crashes and restarts lose nothing.

Checkpoint cases run `core.cli.main.main` in-process (the code `python -m core` runs, without
importing torch a dozen times); one case goes through a real subprocess as well.
CXR_SOAK_SECONDS sets how long the two review writers run: default 60 s, the issue's figure
(the whole suite took 11.5 min on two cores with 20 s); set it lower for a quick run.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from core.cli.main import main
from core.config import ModelConfig, RunConfig
from core.files import read_jsonl
from core.jobs import training as jobs
from core.model.checkpoint import load_checkpoint
from core.model.network import build_model
from core.review.store import ReviewStore
from core.run_folder import pid_alive
from core.runs.workspace import Workspace
from tests.page_helpers import APP, copy_workspace

ROOT = Path(__file__).resolve().parents[1]
SOAK_SECONDS = float(os.environ.get("CXR_SOAK_SECONDS", "60"))


def _one_line_error(capsys: pytest.CaptureFixture, code: int) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


# ---- options and checkpoints ------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> tuple[Path, Path]:
    """18 demo images trained one epoch with --batch-size 512 (larger than the dataset)."""
    base = tmp_path_factory.mktemp("reliability")
    data, run = base / "data", base / "run"
    assert main(["demo-data", str(data), "--per-class", "4", "--size", "64", "--seed", "3"]) == 0
    proc = subprocess.run([sys.executable, "-m", "core", "train", "--data", str(data), "--run", str(run),
                           "--preset", "tiny", "--epochs", "1", "--batch-size", "512"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return data, run


def test_batch_larger_than_the_dataset_trains_one_partial_batch(small_run):
    _, run = small_run
    report = json.loads((run / "report.json").read_text())
    assert report["state"] == "finished" and report["epochs_done"] == 1
    assert report["split_counts"]["train"] < 512
    assert [r["epoch"] for r in read_jsonl(run / "metrics.jsonl")] == [1]


@pytest.fixture(scope="module")
def resnet50_ckpt(small_run, tmp_path_factory) -> dict[str, Path]:
    """Checkpoints from elsewhere: a resnet50 run's, and resnet50 weights under a resnet18 config."""
    _, run = small_run
    folder = tmp_path_factory.mktemp("foreign")
    config = RunConfig.from_dict(load_checkpoint(run / "best.pt")["config"])
    r50 = config.to_dict()
    r50["model"] = {**r50["model"], "arch": "resnet50", "weights": "none"}
    state = build_model(ModelConfig(arch="resnet50", weights="none")).state_dict()
    out = {"other_arch": folder / "r50.pt", "foreign_weights": folder / "r50-in-r18.pt"}
    torch.save({"model": state, "config": r50, "epoch": 0}, out["other_arch"])
    torch.save({"model": state, "config": config.to_dict(), "epoch": 0}, out["foreign_weights"])
    return out


def _copy_run(src: Path, dest: Path) -> Path:
    """A run copy whose checkpoints are hard links (never modify them in place)."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("*.pt"))
    for pt in src.rglob("*.pt"):  # best, last and the served artifact set's own checkpoint
        os.link(pt, dest / pt.relative_to(src))
    return dest


def _damage(run: Path, case: str, foreign: dict[str, Path]) -> None:
    from core.run_folder import RunPaths

    served = RunPaths(run).model  # what search and evaluate load (a link to best.pt's bytes)
    if served.is_file() and served != run / "best.pt":
        _damage_file(served, case, foreign)
    _damage_file(run / "best.pt", case, foreign)
    if case == "missing":
        (run / "last.pt").unlink()


def _damage_file(best: Path, case: str, foreign: dict[str, Path]) -> None:
    if case == "truncated":
        data = best.read_bytes()
        best.unlink()
        best.write_bytes(data[: len(data) // 2])
    elif case == "not_a_checkpoint":
        best.unlink()
        best.write_text("model weights: see the shared drive\n")
    elif case == "missing":
        best.unlink()
    else:
        best.unlink()
        os.link(foreign[case], best)


CASES = {"truncated": "corrupt checkpoint", "not_a_checkpoint": "corrupt checkpoint",
         "missing": "no checkpoint", "other_arch": "holds a resnet50 model but this run is resnet18",
         "foreign_weights": "does not fit resnet18"}


@pytest.mark.parametrize("command", ["evaluate", "search", "embed"])
@pytest.mark.parametrize("case", list(CASES))
def test_damaged_or_foreign_checkpoint_is_one_line(case, command, small_run, resnet50_ckpt, tmp_path, capsys):
    data, src = small_run
    run = _copy_run(src, tmp_path / "run")
    _damage(run, case, resnet50_ckpt)
    image = next((data / "Normal").glob("*.png"))
    args = {"evaluate": ["evaluate", "--run", str(run), "--json"],
            "search": ["search", "--run", str(run), "--image", str(image)],
            "embed": ["embed", "--run", str(run)]}[command]
    line = _one_line_error(capsys, main(args))
    # Search checks the served set's manifest first: a changed or missing checkpoint is named
    # as such (and the line says to re-embed) before its bytes are read.
    served = "checkpoint of artifact set" in line and "re-embed" in line
    assert CASES[case] in line or (served and (command == "search" or case == "missing"))


def test_index_from_another_model_is_one_line(small_run, resnet50_ckpt, tmp_path, capsys):
    """Without config.json to compare against, the index's width still catches a resnet50."""
    data, src = small_run
    run = _copy_run(src, tmp_path / "run")
    _damage(run, "other_arch", resnet50_ckpt)
    (run / "config.json").unlink()
    image = next((data / "Normal").glob("*.png"))
    assert "re-embed" in _one_line_error(capsys, main(["search", "--run", str(run), "--image", str(image)]))


def test_corrupt_last_checkpoint_on_resume_is_one_line_through_the_cli(small_run, tmp_path):
    data, src = small_run
    run = _copy_run(src, tmp_path / "run")
    last = run / "last.pt"
    cut = last.read_bytes()[:4096]
    last.unlink()
    last.write_bytes(cut)
    proc = subprocess.run([sys.executable, "-m", "core", "train", "--data", str(data), "--run", str(run),
                           "--preset", "tiny", "--epochs", "2", "--batch-size", "512"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith("error: corrupt checkpoint") and "delete it" in lines[0]


def test_unreadable_dataset_folder_and_class_folder(small_run, tmp_path, monkeypatch, capsys):
    """As root, mode 000 reads anyway: os.access answers as a normal user would."""
    data, _ = small_run
    copy = tmp_path / "data"
    shutil.copytree(data, copy, ignore=shutil.ignore_patterns("manifest.csv"))
    real_access = os.access
    locked: set[Path] = set()
    monkeypatch.setattr(os, "access", lambda p, m: Path(p) not in locked and real_access(p, m))
    locked.add(copy / "Normal")
    from core.data.dataset import scan_dataset

    ds = scan_dataset(copy)
    assert [(s.path, s.reason) for s in ds.skipped] == [("Normal", "permission denied")]
    assert "Normal" not in ds.classes and len(ds.classes) == 3
    locked.add(copy)
    err = _one_line_error(capsys, main(["train", "--data", str(copy), "--run", str(tmp_path / "r")]))
    assert "not readable" in err


# ---- the app server restarted during a training run ---------------------------------------------

def test_restarted_app_finds_the_running_training(tiny_workspace, tmp_path, monkeypatch):
    run_dir = copy_workspace(tiny_workspace.root, tiny_workspace.run_dir.name, tmp_path / "ws")
    ws_root = run_dir.parent.parent
    # A first "server" process starts the job and exits: only the files are left.
    launch = ("import sys; from pathlib import Path; from core.jobs import training as jobs; "
              "from core.runs.workspace import Workspace; "
              "jobs.start_training(Workspace(Path(sys.argv[1])), 'long', "
              "jobs.train_args(sys.argv[2], 'tiny', epochs=50, batch_size=2))")
    subprocess.run([sys.executable, "-c", launch, str(ws_root), str(tiny_workspace.dataset)],
                   cwd=ROOT, check=True, timeout=120)
    job = jobs.running_job(Workspace(ws_root))
    try:
        assert job is not None and job.name == "long"
        monkeypatch.setenv("CXR_WORKSPACE", str(ws_root))
        at = AppTest.from_file(APP, default_timeout=120).run()  # a new server, a new session
        assert not at.exception, at.exception
        assert any("Training the run 'long'" in p.proto.text for p in at.get("progress"))
        at.switch_page("pages/train.py").run()
        assert not at.exception, at.exception
        assert any("Run 'long' is training in this workspace" in w.value for w in at.warning)
        assert any(b.label == "Stop" for b in at.button)
        assert any(p.proto.text.startswith("**long**") for p in at.get("progress"))
    finally:
        if job is not None:
            jobs.kill(job.run_dir)
            deadline = time.monotonic() + 30
            while pid_alive(job.pid) and time.monotonic() < deadline:
                time.sleep(0.1)


# ---- the review database: concurrent writers, and a kill during a write ---------------------

def _timed_writer(path: str, reviewer: str, seconds: float, start, acked) -> None:
    store = ReviewStore(path, "demo")
    start.wait()
    deadline, i = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        store.record(f"{reviewer}-{i:06d}.png", "z.png", "skip", reviewer=reviewer)
        i += 1
        acked.value = i  # only after record() returned: an acknowledged verdict


@pytest.mark.slow
def test_two_writers_for_the_soak_time_lose_no_verdict(tmp_path):
    path = str(tmp_path / "r.sqlite")
    ReviewStore(path, "demo")
    ctx = mp.get_context("fork")
    start = ctx.Event()
    acked = {name: ctx.Value("q", 0) for name in ("ann", "bob")}
    procs = [ctx.Process(target=_timed_writer, args=(path, n, SOAK_SECONDS, start, acked[n]))
             for n in acked]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(SOAK_SECONDS + 120)
        assert p.exitcode == 0
    store = ReviewStore(path, "demo")
    assert store.integrity_ok()
    stored = {v.path_a for v in store.history()}
    expected = {f"{n}-{i:06d}.png" for n, v in acked.items() for i in range(v.value)}
    assert all(v.value > 0 for v in acked.values())
    assert stored == expected and len(store.history()) == len(expected)


def _acking_writer(path: str, fd: int) -> None:
    store = ReviewStore(path, "demo")
    i = 0
    while True:
        store.record_many([(f"k{i}-{j}.png", "z.png") for j in range(5)], "skip", reviewer="kim")
        os.write(fd, f"{i}\n".encode())  # < PIPE_BUF: never torn
        i += 1


def test_kill_9_during_writes_keeps_every_acknowledged_verdict(tmp_path):
    path = str(tmp_path / "r.sqlite")
    ReviewStore(path, "demo")
    read_fd, write_fd = os.pipe()
    proc = mp.get_context("fork").Process(target=_acking_writer, args=(path, write_fd))
    proc.start()
    os.close(write_fd)
    received = b""
    while received.count(b"\n") < 40:  # ~40 acknowledged batches, then kill mid-stream
        chunk = os.read(read_fd, 4096)
        assert chunk, "writer died"
        received += chunk
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    while chunk := os.read(read_fd, 4096):
        received += chunk
    os.close(read_fd)
    acked = [int(x) for x in received.decode().split()]
    store = ReviewStore(path, "demo")
    assert store.integrity_ok()
    stored = {v.path_a for v in store.history()}
    assert {f"k{i}-{j}.png" for i in acked for j in range(5)} <= stored
    assert len(stored) % 5 == 0 and len(stored) <= 5 * (max(acked) + 2)  # whole batches only
