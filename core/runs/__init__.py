"""A run end to end: train -> embed -> index -> evaluate, workspaces, and the views pages read from a run."""

from core.facade import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "RunReport": "pipeline",
    "embed_run": "pipeline",
    "load_report": "pipeline",
    "train_run": "pipeline",
    "duplicate_threshold": "views",
    "hits_csv": "views",
    "label_vote": "views",
    "DEMO_NAME": "workspace",
    "RunSummary": "workspace",
    "run_summary": "workspace",
    "Workspace": "workspace",
    "ensure_demo_workspace": "workspace",
})

__all__ = [
    "RunReport",
    "embed_run",
    "load_report",
    "train_run",
    "duplicate_threshold",
    "hits_csv",
    "label_vote",
    "DEMO_NAME",
    "RunSummary",
    "run_summary",
    "Workspace",
    "ensure_demo_workspace",
]
