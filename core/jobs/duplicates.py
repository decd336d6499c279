"""Run `python -m core duplicates` in its own process so the Duplicates page can poll it.

The launcher writes `duplicates.job.json` (pid, start time, threshold) in the run folder and
sends the process's output to `duplicates.log`. One search per run at a time: the launcher
takes an exclusive `flock` on `duplicates.lock` and hands it to the child, which holds it
until it exits (crash included).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from core.files import atomic_write_json, read_json
from core.run_folder import pid_alive

_REPO = Path(__file__).resolve().parents[2]
_children: dict[int, subprocess.Popen] = {}  # reaped on each status look-up
SEARCH_JOB_FILE = "duplicates.job.json"
LOG_FILE = "duplicates.log"


@dataclass(frozen=True)
class SearchStatus:
    """'running', 'done', 'failed' (with the last log line) or 'none'."""

    state: str
    message: str = ""
    started: float | None = None


def search_status(run_dir: str | Path) -> SearchStatus:
    """Where the run's last duplicate search stands."""
    for pid, proc in list(_children.items()):
        if proc.poll() is not None:
            del _children[pid]
    run = Path(run_dir)
    job = read_json(run / SEARCH_JOB_FILE, default=None)
    if not job:
        return SearchStatus("done" if (run / "duplicates.json").is_file() else "none")
    started = float(job.get("started", 0.0))
    if pid_alive(job.get("pid")):
        return SearchStatus("running", f"threshold {job.get('threshold')}", started)
    result = run / "duplicates.json"
    if result.is_file() and result.stat().st_mtime >= started:
        return SearchStatus("done", "", started)
    return SearchStatus("failed", _last_line(run / LOG_FILE) or "the search stopped", started)


def _lock(fd: int, wait_s: float) -> bool:
    """Take the search lock, waiting up to wait_s: a finished search's worker processes can
    hold it for a moment after the search itself has exited and reported done."""
    deadline = time.time() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.time() >= deadline:
                return False
            time.sleep(0.2)


def _last_line(path: Path) -> str:
    try:
        lines = [x for x in path.read_text(encoding="utf-8", errors="replace").splitlines() if x.strip()]
    except OSError:
        return ""
    return lines[-1][-300:] if lines else ""


def start_search(run_dir: str | Path, threshold: str | float = "auto") -> SearchStatus:
    """Start a duplicate search of the run's dataset unless one is running.

    Args:
        run_dir: the run folder.
        threshold: 'auto' or a cosine in [-1, 1].

    Returns:
        The status right after the call.
    """
    run = Path(run_dir).resolve()
    status = search_status(run)
    if status.state == "running":
        return status
    fd = os.open(run / "duplicates.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _lock(fd, wait_s=0.0 if status.state == "none" else 10.0):
            return SearchStatus("running", "starting", time.time())  # another session started one
        command = [sys.executable, "-m", "core", "duplicates", "--run", str(run),
                   "--threshold", str(threshold)]
        started = time.time()
        with (run / LOG_FILE).open("wb") as log:
            proc = subprocess.Popen(command, cwd=_REPO, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True, pass_fds=(fd,))
        _children[proc.pid] = proc
        atomic_write_json(run / SEARCH_JOB_FILE, {"pid": proc.pid, "started": started,
                                           "threshold": str(threshold)})
    except OSError as e:
        return SearchStatus("failed", f"could not start: {e.strerror or e}")
    finally:
        os.close(fd)  # the child keeps its copy, and with it the lock
    return SearchStatus("running", "starting", started)
