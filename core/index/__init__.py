"""Vector search: `VectorIndex` (exact, HNSW or IVF-PQ, cosine on normalised vectors) and an index built from shards."""

from core.facade import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "generations": "artifacts",
    "open_artifact_set": "artifacts",
    "write_artifact_set": "artifacts",
    "build_index_from_shards": "from_shards",
    "MIN_TRAIN": "ivfpq",
    "choose_settings": "ivfpq",
    "settings_of": "ivfpq",
    "exact_top_k": "recall",
    "recall_at_k": "recall",
    "sample_recall": "recall",
    "refine_search": "refine",
    "gather_rows": "shard_rows",
    "VectorIndex": "vectors",
    "validate_vectors": "vectors",
})

__all__ = [
    "generations",
    "open_artifact_set",
    "write_artifact_set",
    "build_index_from_shards",
    "MIN_TRAIN",
    "choose_settings",
    "settings_of",
    "exact_top_k",
    "recall_at_k",
    "sample_recall",
    "refine_search",
    "gather_rows",
    "VectorIndex",
    "validate_vectors",
]
