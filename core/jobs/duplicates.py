"""Run `python -m core duplicates` in its own process so the Duplicates page can poll it.

A thin adapter over `core.jobs.process`: the job's info is `duplicates.job.json` (pid, start
time, threshold), its output `duplicates.log`, its lock `duplicates.lock` (one search per run
at a time, held by the child until it exits, crash included).
"""

from __future__ import annotations

from pathlib import Path

from core.files import read_json
from core.jobs.process import JobBusy, JobStatus, core_command, job_status, launch_locked
from core.run_folder import RunPaths

SEARCH_JOB_FILE = "duplicates.job.json"
LOG_FILE = "duplicates.log"
LOCK_FILE = "duplicates.lock"


def search_status(run_dir: str | Path) -> JobStatus:
    """Where the run's last duplicate search stands: 'running', 'done', 'failed' or 'none'."""
    run = Path(run_dir)
    result = RunPaths(run, generation=None).duplicates
    started = float((read_json(run / SEARCH_JOB_FILE, default=None) or {}).get("started", 0.0))
    done = result.is_file() and result.stat().st_mtime >= started
    status = job_status(run / SEARCH_JOB_FILE, run / LOCK_FILE, done=done, log=run / LOG_FILE)
    if status.state == "running":
        threshold = (read_json(run / SEARCH_JOB_FILE, default=None) or {}).get("threshold")
        return JobStatus("running", f"threshold {threshold}", status.started, pid=status.pid)
    if status.state == "failed" and not status.message:
        return JobStatus("failed", "the search stopped", status.started)
    return status


def start_search(run_dir: str | Path, threshold: str | float = "auto") -> JobStatus:
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
    (run / LOG_FILE).unlink(missing_ok=True)  # this search's output only
    command = core_command("duplicates", "--run", str(run), "--threshold", str(threshold))
    try:
        pid = launch_locked(command, run / LOCK_FILE, run / LOG_FILE, info=run / SEARCH_JOB_FILE,
                            threshold=str(threshold))
    except JobBusy:  # another session started one a moment ago
        return JobStatus("running", "starting")
    except OSError as e:
        return JobStatus("failed", f"could not start: {e.strerror or e}")
    return JobStatus("running", "starting", pid=pid)
