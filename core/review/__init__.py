"""Reviewers' verdicts: the SQLite store (append-only, undo), the review queue, exports."""

from core.facade import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "COPY_VERDICT_KINDS": "export",
    "ImageFacts": "export",
    "KEEP_RULE": "export",
    "image_facts": "export",
    "keep_one_per_group": "export",
    "keep_rows": "export",
    "review_groups": "export",
    "to_csv": "export",
    "difference_image": "queue",
    "overlay_image": "queue",
    "DUPLICATE_KINDS": "store",
    "ReviewError": "store",
    "ReviewStore": "store",
    "pair_key": "store",
})

__all__ = [
    "COPY_VERDICT_KINDS",
    "ImageFacts",
    "KEEP_RULE",
    "image_facts",
    "keep_one_per_group",
    "keep_rows",
    "review_groups",
    "to_csv",
    "difference_image",
    "overlay_image",
    "DUPLICATE_KINDS",
    "ReviewError",
    "ReviewStore",
    "pair_key",
]
