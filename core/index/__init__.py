"""Vector search: `VectorIndex` (exact, HNSW or IVF-PQ, cosine on normalised vectors) and an index built from shards."""

from core.facade import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "ArtifactSet": "artifacts",
    "open_artifact_set": "artifacts",
    "write_artifact_set": "artifacts",
    "build_index_from_shards": "from_shards",
    "VectorIndex": "vectors",
    "validate_vectors": "vectors",
    "refine_search": "refine",
    "sample_recall": "recall",
    "recall_at_k": "recall",
    "gather_rows": "shard_rows",
})

__all__ = [
    "ArtifactSet",
    "open_artifact_set",
    "write_artifact_set",
    "build_index_from_shards",
    "VectorIndex",
    "validate_vectors",
    "refine_search",
    "sample_recall",
    "recall_at_k",
    "gather_rows",
]
