"""One way to run long work in its own process: launch it holding a lock, read its status.

The launcher takes an exclusive `flock` on a lock file and hands the open file to the child
(`pass_fds`), which holds it until it and everything it forked have exited; the kernel drops
it on any exit, kill -9 included. So the lock *is* the liveness: a job runs exactly while its
lock is held, with no pid to be recycled and no state file to go stale. Training, duplicate
search and t-SNE are thin adapters over `launch_locked` / `launch` and `JobStatus`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.errors import UserError
from core.files import atomic_write_json, lock_held, read_json, try_lock

REPO = Path(__file__).resolve().parents[2]  # `-m core` must resolve to this checkout
_children: dict[int, subprocess.Popen] = {}  # reaped on each look-up, so no zombies pile up


class JobBusy(UserError):
    """The job's lock is held: the same work is already running (one-line message)."""


@dataclass(frozen=True)
class JobStatus:
    """Where a background job stands.

    state: 'none'/'missing' (never started), 'running', 'done' or 'failed' (it ended without
        its result; `message` says why, e.g. the log's last line).
    fraction: progress in [0, 1] where the job reports it.
    """

    state: str
    message: str = ""
    started: float | None = None
    fraction: float = 0.0
    pid: int | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"


def core_command(*args: str) -> list[str]:
    """`python -m core ARGS` with this interpreter."""
    return [sys.executable, "-m", "core", *args]


def reap() -> None:
    """Collect exited children of this process (no zombies pile up)."""
    for pid, proc in list(_children.items()):
        if proc.poll() is not None:
            del _children[pid]


def is_running(lock: Path) -> bool:
    """True while the job holding `lock` (or one of its children) is alive."""
    reap()
    return lock_held(lock)


@contextmanager
def hold_lock(lock: Path, busy: str = "this job is already running") -> Iterator[int]:
    """Hold `lock` for a launch; the child keeps its own copy of the fd (and the lock).

    Raises:
        JobBusy: someone else holds it (`busy` is the one-line message).
    """
    fd = try_lock(lock, wait=0.2)  # a status look holds it for microseconds
    if fd is None:
        raise JobBusy(busy)
    try:
        yield fd
    finally:
        os.close(fd)


def launch(command: list[str], fd: int, log: Path | None, *, info: Path, header: str = "",
           **fields: object) -> int:
    """Start `command` in its own session, inheriting the locked `fd` (see `hold_lock`).

    Args:
        command: argv, e.g. core_command('duplicates', '--run', DIR).
        fd: the held lock's fd: the child holds the lock for as long as it lives.
        log: receives stdout and stderr (appended); None discards them.
        info: JSON file recording pid, start time, command and `fields`.
        header: a line written to the log before the process starts.

    Returns:
        The child's pid.

    Raises:
        OSError: the process could not be started.
    """
    with (log.open("ab") if log is not None else open(os.devnull, "wb")) as out:
        if header:
            out.write(header.rstrip("\n").encode() + b"\n")
            out.flush()
        proc = subprocess.Popen(
            command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the app's Ctrl-C and the session closing
            pass_fds=(fd,),  # the child inherits the locked file: the lock lives as long as it
            env={**os.environ, "PYTHONUNBUFFERED": "1"})  # the log tail is live
    _children[proc.pid] = proc
    atomic_write_json(info, {**fields, "pid": proc.pid, "started": time.time(), "command": command})
    return proc.pid


def launch_locked(command: list[str], lock: Path, log: Path | None, *, info: Path,
                  header: str = "", **fields: object) -> int:
    """`launch` under `hold_lock`: start the job unless it is running. Returns its pid.

    Raises:
        JobBusy: it is running; OSError: it could not be started.
    """
    with hold_lock(lock) as fd:
        return launch(command, fd, log, info=info, header=header, **fields)


def job_status(info: Path, lock: Path, *, done: bool, log: Path | None = None) -> JobStatus:
    """The status of a job started by `launch`, from liveness first.

    Args:
        info: the job's info file; lock: its lock file.
        done: whether the job's result is there and newer than the launch (the adapter knows
            what its job produces).
        log: where the reason for a failure is read (its last line).
    """
    data = read_json(info, default=None) or {}
    started = data.get("started")
    if is_running(lock):
        return JobStatus("running", "", started, pid=data.get("pid"))
    if done:
        return JobStatus("done", "", started, 1.0, data.get("pid"))
    if not data:
        return JobStatus("none")
    reason = last_line(log) if log is not None else ""
    return JobStatus("failed", reason or "the job stopped unexpectedly", started, pid=data.get("pid"))


def last_line(path: Path, limit: int = 300) -> str:
    """The last non-empty line of a log ('' when none), read from its end only."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16_000))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [x for x in text.replace("\r", "\n").splitlines() if x.strip()]
    return lines[-1][-limit:] if lines else ""
