"""An index over the shards that `embed-archive` wrote, built without loading them all at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.embed.shard_format import INDEX_FILE, ArchiveError, finished_shards
from core.index.recall import sample_recall
from core.index.vectors import EXACT_BELOW, VectorIndex


def build_index_from_shards(out_dir: str | Path, kind: str = "auto", *, save: bool = True,
                            exact_below: int = EXACT_BELOW, opq: bool = False,
                            recall_queries: int = 200) -> VectorIndex:
    """Index all finished shards of `out_dir`; id i is `read_archive_paths(out_dir)[i]`.

    An approximate index (HNSW, IVF-PQ) is checked as it is built: its recall@10 against
    the exact answer on `recall_queries` of the archive's own vectors goes to `index.report`
    (and so into the saved settings).

    Args:
        out_dir: a folder written by `embed_archive`.
        kind: 'auto' (exact below `exact_below` vectors, HNSW below 1M, else IVF-PQ),
            'exact', 'hnsw' or 'ivfpq'.
        save: also write OUT/index.faiss (and its .json settings).
        exact_below: size at which 'auto' switches to HNSW.
        opq: give an IVF-PQ index an OPQ rotation.
        recall_queries: sample size for the recall check (0: no check).

    Returns:
        The VectorIndex.

    Raises:
        ArchiveError: no finished shards, or too few vectors for the kind asked.
    """
    shards = [s for s in finished_shards(out_dir) if s.n_vectors]
    if not shards:
        raise ArchiveError(f"no embedded shards in {out_dir} (run embed-archive first)")
    try:
        index = VectorIndex.build_from_shards([s.vectors for s in shards], kind,
                                              exact_below=exact_below, opq=opq)
    except ValueError as err:
        raise ArchiveError(str(err)) from None
    if index.kind != "exact" and recall_queries > 0:
        arrays = [np.load(s.vectors, mmap_mode="r") for s in shards]
        index.report = sample_recall(index, arrays, recall_queries)
    if save:
        index.save(Path(out_dir) / INDEX_FILE)
    return index
