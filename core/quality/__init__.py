"""Data quality of a run: outliers and likely label errors from its embedding; exposure, blur
and near-empty or non-radiograph films from its films' image statistics (kept in the run)."""

from core.facade import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "Finding": "findings",
    "FindingList": "findings",
    "RunQuality": "lists",
    "run_quality": "lists",
    "RunStats": "stats",
    "STATS_FILE": "stats",
    "run_stats": "stats",
})

__all__ = [
    "Finding",
    "FindingList",
    "RunQuality",
    "run_quality",
    "RunStats",
    "STATS_FILE",
    "run_stats",
]
