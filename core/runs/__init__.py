"""A run end to end: train -> embed -> index -> evaluate, workspaces, and the views pages read from a run."""

from core.facade import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "embed_run": "pipeline",
    "train_run": "pipeline",
    "hits_csv": "views",
    "label_vote": "views",
    "DEMO_NAME": "workspace",
    "Workspace": "workspace",
    "ensure_demo_workspace": "workspace",
    "ModelData": "catalog",
    "delete_run": "catalog",
    "finished_runs": "catalog",
    "model_data": "catalog",
    "ClassQuality": "views",
    "TimedHits": "views",
    "class_quality": "views",
    "duplicate_group_of": "views",
    "timed_search": "views",
    "run_summary": "workspace",
    "workspace_root": "workspace",
})

__all__ = [
    "embed_run",
    "train_run",
    "hits_csv",
    "label_vote",
    "DEMO_NAME",
    "Workspace",
    "ensure_demo_workspace",
    "ModelData",
    "delete_run",
    "finished_runs",
    "model_data",
    "ClassQuality",
    "TimedHits",
    "class_quality",
    "duplicate_group_of",
    "timed_search",
    "run_summary",
    "workspace_root",
]
