"""Background processes started from the app: one launcher and one JobStatus (process), and
their adapters for training, duplicate search and 2-D projection."""

from core.facade import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "JobBusy": "process",
    "JobStatus": "process",
    "job_status": "process",
    "launch": "process",
    "launch_locked": "process",
    "search_status": "duplicates",
    "start_search": "duplicates",
    "progress_path": "projection",
    "projection_status": "projection",
    "start_projection": "projection",
    "write_progress": "projection",
})

__all__ = [
    "JobBusy",
    "JobStatus",
    "job_status",
    "launch",
    "launch_locked",
    "search_status",
    "start_search",
    "progress_path",
    "projection_status",
    "start_projection",
    "write_progress",
]
