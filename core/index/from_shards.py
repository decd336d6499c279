"""An index over the shards that `embed-archive` wrote, built without loading them all at once."""

from __future__ import annotations

from pathlib import Path

from core.embed.shards import INDEX_FILE, ArchiveError, finished_shards
from core.index.vectors import VectorIndex


def build_index_from_shards(out_dir: str | Path, kind: str = "auto", *, save: bool = True,
                            exact_below: int = 200_000) -> VectorIndex:
    """Index all finished shards of `out_dir`; id i is `read_archive_paths(out_dir)[i]`.

    Args:
        out_dir: a folder written by `embed_archive`.
        kind: 'auto' (exact below `exact_below` vectors, else HNSW), 'exact' or 'hnsw'.
        save: also write OUT/index.faiss (and its .json settings).
        exact_below: size at which 'auto' switches to HNSW.

    Returns:
        The VectorIndex.

    Raises:
        ArchiveError: no finished shards.
    """
    shards = finished_shards(out_dir)
    if not shards or not sum(s.n_vectors for s in shards):
        raise ArchiveError(f"no embedded shards in {out_dir} (run embed-archive first)")
    index = VectorIndex.build_from_shards([s.vectors for s in shards if s.n_vectors], kind,
                                          exact_below=exact_below)
    if save:
        index.save(Path(out_dir) / INDEX_FILE)
    return index
