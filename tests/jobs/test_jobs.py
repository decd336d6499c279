"""Training jobs in their own process: start, refuse a second, stop, resume, find again."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from core.config import ConfigError
from core.demo.dataset import write_demo_dataset
from core.files import read_json
from core.jobs import process
from core.jobs import training as jobs
from core.run_folder import read_status
from core.runs.workspace import Workspace


@pytest.fixture(scope="module")
def demo_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_dataset(tmp_path_factory.mktemp("data") / "demo", per_class=6, size=64).root


def _long_args(data: Path) -> list[str]:
    # Many small steps: the job is still training when the test signals it.
    return jobs.train_args(data, "tiny", epochs=50, batch_size=2)


def _wait_for_step(run_dir: Path, step: int, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    status: dict = {}
    while time.monotonic() < deadline:
        status = read_status(run_dir)
        if status.get("state") == "running" and (status.get("step") or 0) >= step:
            return status
        assert status.get("state") not in ("failed", "finished"), (run_dir / "train.log").read_text()
        time.sleep(0.2)
    raise AssertionError(f"run did not reach step {step}: {status}")


def test_train_args_builds_cli_options_and_validates(tmp_path: Path) -> None:
    args = jobs.train_args(tmp_path, "quick", epochs=3, image_size=None, lr=0.01)
    assert args == ["--data", str(tmp_path.resolve()), "--preset", "quick", "--epochs", "3", "--lr", "0.01"]
    with pytest.raises(ConfigError, match="epochs"):
        jobs.train_args(tmp_path, "quick", epochs=0)
    with pytest.raises(jobs.JobError, match="unknown training option"):
        jobs.train_args(tmp_path, "quick", optimiser="sgd")


def test_bad_run_name_is_refused(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    for name in ("../escape", "a/b", ".hidden", ""):
        with pytest.raises(jobs.JobError, match="run name"):
            jobs.start_training(ws, name, ["--data", str(tmp_path)])
    assert not ws.runs_dir.exists()


def test_start_refuse_stop_resume_and_find_again(tmp_path: Path, demo_set: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    job = jobs.start_training(ws, "first", _long_args(demo_set))
    try:
        assert job.run_dir == (ws.runs_dir / "first").resolve()
        assert read_json(job.run_dir / "job.json")["args"] == _long_args(demo_set)
        assert (job.run_dir / "train.pid").read_text().strip() == str(job.pid)
        with pytest.raises(jobs.JobError, match="'first'.*is training"):
            jobs.start_training(ws, "second", _long_args(demo_set))
        assert not (ws.runs_dir / "second").exists()

        process._children.clear()  # as after an app restart: only the files are left
        found = jobs.running_job(ws)
        assert found is not None and found.pid == job.pid and found.run_dir == job.run_dir
        assert jobs.is_running(job.run_dir)

        _wait_for_step(job.run_dir, 9)  # 8 steps an epoch: one epoch done, last.pt written
        assert jobs.stop(job.run_dir)
        assert jobs.wait(job, 90)
        assert read_status(job.run_dir)["state"] == "stopped"
        assert (job.run_dir / "last.pt").is_file()
        assert jobs.running_job(ws) is None
        assert not jobs.stop(job.run_dir)  # nothing left to stop

        with pytest.raises(jobs.JobError, match="already exists"):
            jobs.start_training(ws, "first", _long_args(demo_set))
        again = jobs.resume(job.run_dir)
        assert again.pid != job.pid and list(again.args) == _long_args(demo_set)
        assert jobs.running_job(ws).pid == again.pid
        _wait_for_step(job.run_dir, 9)  # resumed after epoch 1, not from step 0
        assert jobs.stop(again.run_dir)
        assert jobs.wait(again, 90)
        assert read_status(job.run_dir)["state"] == "stopped"
        log = (job.run_dir / "train.log").read_text()
        assert "=== started" in log and "=== resumed" in log
    finally:
        for j in (job, jobs.running_job(ws)):
            if j is not None:
                jobs.kill(j.run_dir)


def test_two_sessions_clicking_at_once_start_one_job(tmp_path: Path, demo_set: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    results: dict[str, object] = {}
    gate = threading.Barrier(2)

    def click(name: str) -> None:
        gate.wait()
        try:
            results[name] = jobs.start_training(ws, name, _long_args(demo_set))
        except jobs.JobError as e:
            results[name] = e

    threads = [threading.Thread(target=click, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    started = [r for r in results.values() if isinstance(r, jobs.Job)]
    refused = [r for r in results.values() if isinstance(r, jobs.JobError)]
    try:
        assert len(started) == 1 and len(refused) == 1
    finally:
        for job in started:
            jobs.kill(job.run_dir)
            jobs.wait(job, 30)


def test_demo_run_starts_once(tmp_path: Path, demo_set: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    assert jobs.start_demo_if_empty(ws) is None  # no dataset
    ws.update(dataset=str(demo_set), synthetic=True)
    job = jobs.start_demo_if_empty(ws)
    try:
        assert job is not None and job.name == "demo"
        assert "--preset" in job.args and job.args[job.args.index("--preset") + 1] == "demo"
        again = jobs.start_demo_if_empty(ws)  # a refresh, or a second browser
        assert again is not None and again.pid == job.pid
        jobs.kill(job.run_dir)
        assert jobs.wait(job, 30)
        assert jobs.start_demo_if_empty(ws) is None  # stopped by the user: not restarted
        assert [p.name for p in ws.runs_dir.iterdir()] == ["demo"]
    finally:
        jobs.kill(job.run_dir)


def test_demo_run_not_started_on_a_users_dataset(tmp_path: Path, demo_set: Path) -> None:
    own = tmp_path / "own"
    for label in ("a", "b"):
        (own / label).mkdir(parents=True)
    ws = Workspace(tmp_path / "ws")
    ws.update(dataset=str(own))
    assert jobs.start_demo_if_empty(ws) is None
    assert jobs.first_start(ws) is None
    assert not ws.runs_dir.exists()


def test_log_tail_reads_the_last_lines(tmp_path: Path) -> None:
    assert jobs.log_tail(tmp_path) == ""
    (tmp_path / "train.log").write_text("".join(f"line {i}\n" for i in range(1000)) + "a\rb\n")
    assert jobs.log_tail(tmp_path, lines=3) == "line 999\na\nb"
    assert jobs.log_tail(tmp_path, lines=5, max_bytes=20).splitlines()[-1] == "b"
