"""Vector search: `VectorIndex` (exact or HNSW, cosine on normalised vectors) and an index built from shards."""

from core.facade import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "ArtifactSet": "artifacts",
    "open_artifact_set": "artifacts",
    "write_artifact_set": "artifacts",
    "build_index_from_shards": "from_shards",
    "VectorIndex": "vectors",
    "validate_vectors": "vectors",
})

__all__ = [
    "ArtifactSet",
    "open_artifact_set",
    "write_artifact_set",
    "build_index_from_shards",
    "VectorIndex",
    "validate_vectors",
]
