"""Training jobs: start `python -m core train` in its own process, find it again, stop, resume.

One training at a time per workspace. The guarantee is a lock, not a check-then-act: the
launcher takes an exclusive `flock` on `<workspace>/jobs.lock` and hands that open file to
the training process, which holds it until it (and anything it forked) exits. The kernel
releases it on any exit, crash included, so a dead job never blocks the next one, and two
sessions clicking Start at once cannot both win. `jobs.json` says which run holds the lock;
each run keeps its command line in `job.json` (for Resume) and its pid in `train.pid`.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.config import OPTIONS, make_run_config, split_options
from core.errors import UserError
from core.files import atomic_write_json, atomic_write_text, read_json
from core.jobs.process import JobBusy, core_command, hold_lock, launch, reap
from core.run_folder import RunPaths, list_runs, pid_alive, read_status
from core.runs.workspace import Workspace, ensure_demo_workspace

LOCK_FILE = "jobs.lock"
JOBS_FILE = "jobs.json"
JOB_FILE = "job.json"
DEMO_RUN = "demo"
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


class JobError(UserError, RuntimeError):
    """A job cannot be started, resumed or stopped (one-line message)."""


@dataclass(frozen=True)
class Job:
    """A training process and the run folder it writes to."""

    run_dir: Path
    pid: int
    args: tuple[str, ...]
    started: float

    @property
    def name(self) -> str:
        return self.run_dir.name


def train_args(data: str | Path, preset: str = "seed", **options: object) -> list[str]:
    """The `python -m core train` options (without --run) for a preset plus overrides.

    Args:
        data: the dataset folder.
        preset: a name from core.config.PRESETS.
        options: names from core.config.OPTIONS (the CLI's train flags); None keeps the
            preset's value.

    Returns:
        ["--data", DATA, "--preset", P, "--epochs", "N", ...].

    Raises:
        ConfigError: the same checks the CLI makes, so a bad form never launches a process.
    """
    if set(options) - {o.name for o in OPTIONS}:
        raise JobError(f"unknown training option {sorted(set(options) - {o.name for o in OPTIONS})[0]}")
    recipe, _ = split_options(dict(options))
    make_run_config(str(data), preset, **recipe)  # type: ignore[arg-type]
    given = {k: v for k, v in options.items() if v is not None}
    args = ["--data", str(Path(data).expanduser().resolve()), "--preset", preset]
    for o in sorted((o for o in OPTIONS if o.name in given), key=lambda o: o.name):
        args += [o.flag, str(given[o.name])]
    return args


def _is_training(pid: int | None, command: list[str]) -> bool:
    """True when `pid` is alive and runs `command` (not a recycled pid)."""
    reap()
    if not pid_alive(pid):
        return False
    try:
        argv = Path(f"/proc/{int(pid)}/cmdline").read_bytes().split(b"\0")[:-1]
    except OSError:  # no /proc (macOS): trust the pid
        return True
    return [a.decode(errors="replace") for a in argv] == command


def _job_from(run_dir: Path) -> Job | None:
    info = read_json(run_dir / JOB_FILE, default=None) or {}
    pid = info.get("pid")
    if not _is_training(pid, list(info.get("command", ()))):
        return None
    return Job(run_dir, int(pid), tuple(info.get("args", ())), float(info.get("started", 0.0)))


def running_job(workspace: Workspace) -> Job | None:
    """The training running in this workspace, if any (found again after an app restart)."""
    current = read_json(workspace.root / JOBS_FILE, default=None) or {}
    if current.get("run"):
        job = _job_from(Path(current["run"]))
        if job is not None:
            return job
    for run_dir in list_runs(workspace.runs_dir) + _runs_without_config(workspace):
        job = _job_from(run_dir)
        if job is not None:
            return job
    return None


def _runs_without_config(workspace: Workspace) -> list[Path]:
    """Run folders whose process has not yet written config.json (it is still importing)."""
    if not workspace.runs_dir.is_dir():
        return []
    return [p for p in workspace.runs_dir.iterdir()
            if (p / JOB_FILE).is_file() and not (p / "config.json").is_file()]


def is_running(run_dir: Path) -> bool:
    """True while the run's training process is alive."""
    return _job_from(Path(run_dir)) is not None


@contextmanager
def _workspace_lock(workspace: Workspace) -> Iterator[int]:
    """Hold the workspace's job lock, or raise JobError naming the run that holds it."""
    workspace.root.mkdir(parents=True, exist_ok=True)
    try:
        with hold_lock(workspace.root / LOCK_FILE) as fd:
            yield fd  # the training process keeps its own copy, and with it the lock
    except JobBusy:
        job = running_job(workspace)
        if job is None:  # the lock outlives the main process while its workers exit
            raise JobError("a training in this workspace is still ending; try again in a few seconds") from None
        raise JobError(f"run '{job.name}' (pid {job.pid}) is training in this workspace; "
                       "stop it or wait until it ends") from None


def _launch(workspace: Workspace, run_dir: Path, args: list[str], *, new: bool) -> Job:
    if "--run" in args:
        raise JobError("give the run by name, not as --run in the options")
    if "--data" in args[:-1]:  # the job runs in the repository folder: paths must be absolute
        i = args.index("--data") + 1
        args = [*args[:i], str(Path(args[i]).expanduser().resolve()), *args[i + 1:]]
    run_dir = run_dir.resolve()
    paths = RunPaths(run_dir)
    with _workspace_lock(workspace) as fd:
        if new and (run_dir / JOB_FILE).exists():
            raise JobError(f"a run named '{run_dir.name}' already exists; choose another name")
        run_dir.mkdir(parents=True, exist_ok=True)
        command = core_command("train", *args, "--run", str(run_dir))
        header = (f"=== {'started' if new else 'resumed'} {time.strftime('%Y-%m-%d %H:%M:%S')}: "
                  f"{' '.join(command[1:])}")
        try:
            pid = launch(command, fd, paths.log, info=run_dir / JOB_FILE, header=header, args=args)
        except OSError as e:
            raise JobError(f"could not start training: {e.strerror or e}") from None
        started = float((read_json(run_dir / JOB_FILE, default=None) or {}).get("started", time.time()))
        atomic_write_text(paths.pid, f"{pid}\n")
        atomic_write_json(workspace.root / JOBS_FILE, {"run": str(run_dir), "pid": pid,
                                                      "started": started})
    return Job(run_dir, pid, tuple(args), started)


def start_training(workspace: Workspace, run_name: str, args: list[str]) -> Job:
    """Start `python -m core train ARGS --run <workspace>/runs/<run_name>` in its own process.

    Args:
        workspace: where the run folder and the job lock live.
        run_name: a new run's folder name (letters, digits, '.', '_', '-').
        args: the train options without --run (see train_args).

    Returns:
        The started job; its output goes to the run's train.log.

    Raises:
        JobError: another training runs in this workspace, the name is taken or invalid.
    """
    if not _RUN_NAME.match(run_name):
        raise JobError(f"run name '{run_name}' must be letters, digits, '.', '_' or '-' (max 80)")
    return _launch(workspace, workspace.runs_dir / run_name, list(args), new=True)


def resume(run_dir: Path, workspace: Workspace | None = None) -> Job:
    """Start a stopped or interrupted run again with its saved options (continues from last.pt).

    Raises:
        JobError: not a run started here, already finished, or another training is running.
    """
    run_dir = Path(run_dir)
    info = read_json(run_dir / JOB_FILE, default=None)
    if not info or not isinstance(info.get("args"), list):
        raise JobError(f"{run_dir.name} was not started from the app; resume it with the CLI")
    if read_status(run_dir).get("state") == "finished":
        raise JobError(f"run '{run_dir.name}' has already finished")
    workspace = workspace or Workspace(run_dir.parent.parent)  # <root>/runs/<name>
    return _launch(workspace, run_dir, info["args"], new=False)


def stop(run_dir: Path) -> bool:
    """Ask the run's training to stop after its current step (status becomes "stopped").

    SIGTERM goes to the training process only, not its group: DataLoader workers die on
    SIGTERM and the trainer would report that as a failure instead of a clean stop.

    Returns:
        True if a running job was signalled, False if none was running.
    """
    job = _job_from(Path(run_dir))
    if job is None:
        return False
    try:
        os.kill(job.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def kill(run_dir: Path) -> bool:
    """Kill the run's whole process group at once (when a stop does not end it)."""
    job = _job_from(Path(run_dir))
    if job is None:
        return False
    try:
        os.killpg(job.pid, signal.SIGKILL)  # start_new_session: the group id is the pid
    except ProcessLookupError:
        return False
    return True


def _group_alive(pgid: int) -> bool:
    """True while a live (not zombie) process is in the process group `pgid`."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        # A zombie leader whose other threads still exit keeps its files open (and the lock)
        if int(pgrp) == pgid and (state != "Z" or _threads(stat.parent) > 1):
            return True
    return False


def _threads(proc_dir: Path) -> int:
    try:
        return len(os.listdir(proc_dir / "task"))
    except OSError:
        return 0


def wait(job: Job, timeout: float = 60.0) -> bool:
    """Wait until the job's process and its children (which hold the lock) have ended.

    Returns:
        True if they ended within `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = _job_from(job.run_dir)
        if (now is None or now.pid != job.pid) and not _group_alive(job.pid):
            return True
        time.sleep(0.2)
    return False


def _holds_demo_set(workspace: Workspace) -> bool:
    dataset = workspace.dataset_path
    return dataset is not None and (dataset / "demo.json").is_file()  # the demo set's marker


def demo_pending(workspace: Workspace) -> bool:
    """True while the workspace holds the demo set and the demo model was never started (no
    run at all, no `runs/demo` in any state): what `start_demo_if_empty` would start."""
    return (_holds_demo_set(workspace) and not (workspace.runs_dir / DEMO_RUN).exists()
            and not list_runs(workspace.runs_dir))


def start_demo_if_empty(workspace: Workspace) -> Job | None:
    """Start the `demo` preset run once, in a workspace holding the demo set and no run.

    Idempotent across sessions and refreshes: a `runs/demo` folder, in any state (finished,
    stopped by the user, failed), means it was started before; a concurrent call that loses
    the lock returns the job that won.

    Returns:
        The demo job if one is running (started now or before), else None.
    """
    if not _holds_demo_set(workspace):
        return None
    if not demo_pending(workspace):
        return running_job(workspace)
    try:
        return start_training(workspace, DEMO_RUN, train_args(workspace.dataset_path, "demo"))
    except JobError:
        return running_job(workspace)


def first_start(workspace: Workspace) -> Job | None:
    """On an empty workspace (no dataset, no runs): write the demo set and start the demo run.

    Serialised across sessions by `<workspace>/setup.lock`, so two browsers opening a fresh
    app at once write the demo set once.
    """
    workspace.root.mkdir(parents=True, exist_ok=True)
    with open(workspace.root / "setup.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if workspace.dataset_path is None and not list_runs(workspace.runs_dir):
            ensure_demo_workspace(workspace.root)
        return start_demo_if_empty(workspace)


def log_tail(run_dir: Path, lines: int = 40, max_bytes: int = 64_000) -> str:
    """The last `lines` lines of the run's train.log ('' when there is none yet).

    Reads only the file's last `max_bytes`, so a long log costs the same as a short one.
    """
    path = RunPaths(Path(run_dir)).log
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace").replace("\r", "\n")  # tqdm redraws with \r
    return "\n".join([t for t in text.splitlines() if t.strip()][-lines:])
