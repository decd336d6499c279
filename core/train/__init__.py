"""Training: decoded two-view datasets, the loop (status, metrics, checkpoints), time estimates."""

from core.facade import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "BatchViews": "batch_views",
    "decoded_films": "decoded_cache",
    "estimate_training": "estimate",
    "Trainer": "trainer",
    "FileDataset": "views",
    "FilmPairs": "views",
    "PatientPairDataset": "views",
    "TwoViewDataset": "views",
    "decode_images": "views",
    "default_workers": "views",
    "patient_partners": "views",
    "worker_init": "views",
    "measure_warmup": "warmup",
    "saved_warmup": "warmup",
})

__all__ = [
    "BatchViews",
    "decoded_films",
    "estimate_training",
    "Trainer",
    "FileDataset",
    "FilmPairs",
    "PatientPairDataset",
    "TwoViewDataset",
    "decode_images",
    "default_workers",
    "patient_partners",
    "worker_init",
    "measure_warmup",
    "saved_warmup",
]
