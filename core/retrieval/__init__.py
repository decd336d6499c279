"""Query by example and its quality: `Searcher`/`Hit`, precision@k, mAP, mAP@R, evaluation beside
baselines; patient-aware retrieval (same-patient metrics, the "same patient?" prior, hiding a patient)."""

from core.facade import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "evaluate_run": "evaluate",
    "RetrievalScores": "metrics",
    "average_precision": "metrics",
    "evaluate_retrieval": "metrics",
    "map_at_r": "metrics",
    "precision_at_k": "metrics",
    "r_precision": "metrics",
    "Hit": "search",
    "Searcher": "search",
    "SamePatientScores": "patient_metrics",
    "recall_at_k": "patient_metrics",
    "same_patient_retrieval": "patient_metrics",
    "SamePatientPrior": "patients",
    "calibrate_same_patient": "patients",
    "without_patient": "patients",
    "Familiarity": "familiarity",
    "ScoreProfile": "familiarity",
    "familiarity_of": "familiarity",
    "score_profile": "familiarity",
})

__all__ = [
    "evaluate_run",
    "RetrievalScores",
    "average_precision",
    "evaluate_retrieval",
    "map_at_r",
    "precision_at_k",
    "r_precision",
    "Hit",
    "Searcher",
    "SamePatientScores",
    "recall_at_k",
    "same_patient_retrieval",
    "SamePatientPrior",
    "calibrate_same_patient",
    "without_patient",
    "Familiarity",
    "ScoreProfile",
    "familiarity_of",
    "score_profile",
]
