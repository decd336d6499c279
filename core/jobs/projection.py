"""Compute a t-SNE map in its own process (`python -m core project`), so a page can poll it.

The process writes `<projection>.progress.json` (state, fraction, message, pid) next to the
`.npy` it will produce. At most one process per projection: the launcher takes an exclusive
`flock` on `<projection>.lock` and hands the open file to the child, which holds it until it
exits (crash included), as `core.jobs.training` does for training.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from core.embed.projection import ProjectionSpec, load_projection, projection_path
from core.files import atomic_write_json, read_json
from core.run_folder import pid_alive

_REPO = Path(__file__).resolve().parents[2]
_children: dict[int, subprocess.Popen] = {}  # reaped on each status look-up


@dataclass(frozen=True)
class ProjectionStatus:
    """Where a projection stands: 'done', 'running', 'failed' or 'missing'."""

    state: str
    fraction: float = 0.0
    message: str = ""


def progress_path(run_dir: str | Path, spec: ProjectionSpec) -> Path:
    """The progress file of a projection."""
    return projection_path(run_dir, spec).with_suffix(".progress.json")


def _lock_path(run_dir: str | Path, spec: ProjectionSpec) -> Path:
    return projection_path(run_dir, spec).with_suffix(".lock")


def write_progress(run_dir: str | Path, spec: ProjectionSpec, state: str, fraction: float,
                   message: str, pid: int | None = None) -> None:
    """Record progress (the computing process calls this; `pid` defaults to the caller's)."""
    atomic_write_json(progress_path(run_dir, spec), {
        "state": state, "fraction": round(float(fraction), 4), "message": message,
        "pid": pid or os.getpid(), "updated": time.time()})


def projection_status(run_dir: str | Path, spec: ProjectionSpec) -> ProjectionStatus:
    """Done (a current file exists), running, failed (with the reason) or missing.

    Args:
        run_dir: the run folder.
        spec: which projection.
    """
    for pid, proc in list(_children.items()):
        if proc.poll() is not None:
            del _children[pid]
    info = read_json(progress_path(run_dir, spec), default=None) or {}
    state = info.get("state")
    if state == "running" and pid_alive(info.get("pid")):
        return ProjectionStatus("running", float(info.get("fraction", 0.0)), str(info.get("message", "")))
    if load_projection(run_dir, spec) is not None:
        return ProjectionStatus("done", 1.0)
    if state == "failed":
        return ProjectionStatus("failed", 0.0, str(info.get("message", "failed")))
    if state == "running":  # the process died without a word (killed, out of memory)
        return ProjectionStatus("failed", 0.0, "the computation stopped unexpectedly")
    return ProjectionStatus("missing")


def start_projection(run_dir: str | Path, spec: ProjectionSpec) -> ProjectionStatus:
    """Start computing `spec` in the background unless it is done or already being computed.

    Args:
        run_dir: the run folder.
        spec: which projection.

    Returns:
        The status right after the call ('running' or 'done').
    """
    run_dir = Path(run_dir).resolve()
    status = projection_status(run_dir, spec)
    if status.state in ("running", "done"):
        return status
    fd = os.open(_lock_path(run_dir, spec), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another session started it a moment ago
            return ProjectionStatus("running", 0.0, "starting")
        command = [sys.executable, "-m", "core", "project", "--run", str(run_dir),
                   "--method", spec.method, "--perplexity", f"{spec.perplexity:g}",
                   "--seed", str(spec.seed), "--split", spec.split]
        proc = subprocess.Popen(command, cwd=_REPO, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True, pass_fds=(fd,))
        _children[proc.pid] = proc
        if (read_json(progress_path(run_dir, spec), default=None) or {}).get("pid") != proc.pid:
            write_progress(run_dir, spec, "running", 0.0, "starting", pid=proc.pid)
    except OSError as e:
        write_progress(run_dir, spec, "failed", 0.0, f"could not start: {e.strerror or e}")
        return ProjectionStatus("failed", 0.0, f"could not start: {e.strerror or e}")
    finally:
        os.close(fd)  # the child keeps its copy, and with it the lock
    return ProjectionStatus("running", 0.0, "starting")

