"""Query by example and its quality: `Searcher`/`Hit`, precision@k, mAP, mAP@R, evaluation beside baselines."""

from core.facade import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "Evaluation": "evaluate",
    "evaluate_run": "evaluate",
    "load_evaluation": "evaluate",
    "RetrievalScores": "metrics",
    "average_precision": "metrics",
    "evaluate_retrieval": "metrics",
    "map_at_r": "metrics",
    "precision_at_k": "metrics",
    "r_precision": "metrics",
    "Hit": "search",
    "Searcher": "search",
})

__all__ = [
    "Evaluation",
    "evaluate_run",
    "load_evaluation",
    "RetrievalScores",
    "average_precision",
    "evaluate_retrieval",
    "map_at_r",
    "precision_at_k",
    "r_precision",
    "Hit",
    "Searcher",
]
