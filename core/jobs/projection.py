"""Compute a t-SNE map in its own process (`python -m core project`), so a page can poll it.

The process writes `<projection>.progress.json` (state, fraction, message, pid) next to the
`.npy` it will produce. A thin adapter over `core.jobs.process`: at most one process per
projection, holding `<projection>.lock` until it exits (crash included); it runs exactly
while that lock is held.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from core.embed.projection import ProjectionSpec, load_projection, projection_path
from core.files import atomic_write_json, read_json
from core.jobs.process import JobBusy, JobStatus, core_command, hold_lock, is_running, launch


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


def projection_status(run_dir: str | Path, spec: ProjectionSpec) -> JobStatus:
    """Done (a current file exists), running, failed (with the reason) or missing.

    Args:
        run_dir: the run folder.
        spec: which projection.
    """
    info = read_json(progress_path(run_dir, spec), default=None) or {}
    if is_running(_lock_path(run_dir, spec)):
        return JobStatus("running", str(info.get("message", "")), fraction=float(info.get("fraction", 0.0)))
    if load_projection(run_dir, spec) is not None:
        return JobStatus("done", fraction=1.0)
    if info.get("state") == "failed":
        return JobStatus("failed", str(info.get("message", "failed")))
    if info.get("state") == "running":  # the process died without a word (killed, out of memory)
        return JobStatus("failed", "the computation stopped unexpectedly")
    return JobStatus("missing")


def start_projection(run_dir: str | Path, spec: ProjectionSpec) -> JobStatus:
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
    command = core_command("project", "--run", str(run_dir), "--method", spec.method,
                           "--perplexity", f"{spec.perplexity:g}", "--seed", str(spec.seed),
                           "--split", spec.split)
    try:
        with hold_lock(_lock_path(run_dir, spec)) as fd:
            write_progress(run_dir, spec, "running", 0.0, "starting")
            launch(command, fd, None, info=_job_path(run_dir, spec))
    except JobBusy:  # another session started it a moment ago
        return JobStatus("running", "starting")
    except OSError as e:
        write_progress(run_dir, spec, "failed", 0.0, f"could not start: {e.strerror or e}")
        return JobStatus("failed", f"could not start: {e.strerror or e}")
    return JobStatus("running", "starting")


def _job_path(run_dir: str | Path, spec: ProjectionSpec) -> Path:
    return projection_path(run_dir, spec).with_suffix(".job.json")
