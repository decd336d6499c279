"""The synthetic demo dataset: drawn chest phantoms in four classes with planted near-duplicates."""

from core.facade import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "sample_anatomy": "anatomy",
    "DemoDataError": "dataset",
    "DemoSummary": "dataset",
    "write_demo_dataset": "dataset",
    "CLASSES": "lesions",
    "render_phantom": "phantom",
    "sample_acquisition": "phantom",
})

__all__ = [
    "sample_anatomy",
    "DemoDataError",
    "DemoSummary",
    "write_demo_dataset",
    "CLASSES",
    "render_phantom",
    "sample_acquisition",
]
