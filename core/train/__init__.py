"""Training: decoded two-view datasets, the loop (status, metrics, checkpoints), time estimates."""

from core.facade import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "estimate_training": "estimate",
    "Trainer": "trainer",
    "FileDataset": "views",
    "TwoViewDataset": "views",
    "decode_images": "views",
    "default_workers": "views",
    "worker_init": "views",
    "Warmup": "warmup",
    "measure_warmup": "warmup",
    "saved_warmup": "warmup",
})

__all__ = [
    "estimate_training",
    "Trainer",
    "FileDataset",
    "TwoViewDataset",
    "decode_images",
    "default_workers",
    "worker_init",
    "Warmup",
    "measure_warmup",
    "saved_warmup",
]
