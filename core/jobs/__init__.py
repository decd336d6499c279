"""Background processes started from the app: training, duplicate search and 2-D maps (one launcher)."""

from core.facade import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "search_status": "duplicates",
    "start_search": "duplicates",
    "progress_path": "projection",
    "projection_status": "projection",
    "start_projection": "projection",
    "write_progress": "projection",
    "train_args": "training",
})

__all__ = [
    "search_status",
    "start_search",
    "progress_path",
    "projection_status",
    "start_projection",
    "write_progress",
    "train_args",
]
