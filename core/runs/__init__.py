"""A run end to end: train -> embed -> index -> evaluate, workspaces, and the views pages read from a run."""

from core.facade import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "delete_run": "catalog",
    "finished_runs": "catalog",
    "model_data": "catalog",
    "RunReport": "pipeline",
    "_check_resume": "pipeline",
    "embed_run": "pipeline",
    "load_report": "pipeline",
    "train_run": "pipeline",
    "TimedHits": "views",
    "class_quality": "views",
    "duplicate_group_of": "views",
    "hits_csv": "views",
    "label_vote": "views",
    "timed_search": "views",
    "DEMO_NAME": "workspace",
    "RunSummary": "workspace",
    "Workspace": "workspace",
    "ensure_demo_workspace": "workspace",
    "run_summary": "workspace",
    "workspace_root": "workspace",
})

__all__ = [
    "delete_run",
    "finished_runs",
    "model_data",
    "RunReport",
    "_check_resume",
    "embed_run",
    "load_report",
    "train_run",
    "TimedHits",
    "class_quality",
    "duplicate_group_of",
    "hits_csv",
    "label_vote",
    "timed_search",
    "DEMO_NAME",
    "RunSummary",
    "Workspace",
    "ensure_demo_workspace",
    "run_summary",
    "workspace_root",
]
