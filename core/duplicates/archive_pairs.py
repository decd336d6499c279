"""Near-duplicates of a whole archive (`embed-archive` shards + index), at millions of images.

Stage one, candidates: every row's k nearest through the archive's index (exact, HNSW or
IVF-PQ), `block` rows at a time read from the memory-mapped shards, re-scored exactly
(`core.index.refine`) and kept at or above `floor`; memory is one block of queries, its
candidates and the pairs found, never all vectors; to these are added every file's `copy_k`
most-voted files by shared local features (`core.duplicates.copy_candidates`, the duplicate
search's copy candidates: a rotated or re-exported copy the embedding misses), whose features
are cached in the output folder (`features.npz`; about 25 kB a file in memory, 6.4 kB of it
the index). Stage two, verification: identical files
(same bytes) are 'exact'; every other candidate is verified geometrically with the duplicate
search's own check (`core.geometry.verify`: ORB + RANSAC similarity + aligned agreement) and
a verified one is a 'copy'; a pair at or above `threshold` that is not a copy is 'similar'.
With engine 'ray' the verification runs as Ray tasks on the embedding cluster, `chunk` pairs a
task, each task reading only the images its pairs name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.duplicates.copy_candidates import DEFAULT_COPY_K, copy_candidate_pairs
from core.duplicates.proof import DEFAULT_FLOOR, FEATURES
from core.duplicates.rules import VerifyRule
from core.embed.shard_format import finished_shards, read_archive_paths
from core.files import file_sha256
from core.geometry.features import image_features
from core.geometry.verify import verify_many
from core.index.refine import refine_search
from core.index.shard_rows import gather_rows
from core.index.vectors import VectorIndex

VERIFY_CHUNK = 256  # pairs per verification task


@dataclass(frozen=True)
class ArchivePair:
    """Two archive files (a < b), their exact cosine, and the verification's verdict."""

    a: str
    b: str
    score: float
    kind: str  # exact | copy | similar ("" when below threshold and not verified a copy)
    inliers: int | None
    agreement: float | None

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "score": round(self.score, 6), "kind": self.kind,
                "inliers": self.inliers,
                "agreement": None if self.agreement is None else round(self.agreement, 4)}


def candidate_pairs(arrays: Sequence[np.ndarray], index: VectorIndex, k: int = 10,
                    floor: float = DEFAULT_FLOOR, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """All-pairs candidates through `index`, one block of query rows at a time.

    Args:
        arrays: the shards (memory-mapped), in id order; the index covers exactly their rows.
        index: any VectorIndex over those rows.
        k: neighbours per row; floor: lowest exact cosine kept; block: query rows per search.

    Returns:
        pairs: (P, 2) int64 row ids with i < j, unique; scores: (P,) float32 exact cosines.
        Sorted by score descending, then ids.
    """
    n = sum(a.shape[0] for a in arrays)
    if index.ntotal != n:
        raise ValueError(f"the index holds {index.ntotal} rows, the shards {n}")
    codes, scores = [], []
    for start in range(0, n, block):
        rows = np.arange(start, min(n, start + block))
        found = refine_search(index, gather_rows(list(arrays), rows), k + 1,
                              lambda ids: gather_rows(list(arrays), ids))
        own = rows[:, None]  # (B, 1)
        keep = (found.ids >= 0) & (found.ids != own) & (found.scores >= np.float32(floor))
        r, c = np.nonzero(keep)
        a, b = np.minimum(own[r, 0], found.ids[r, c]), np.maximum(own[r, 0], found.ids[r, c])
        codes.append(a * n + b)
        scores.append(found.scores[r, c])
    code = np.concatenate(codes) if codes else np.zeros(0, np.int64)
    score = np.concatenate(scores) if scores else np.zeros(0, np.float32)
    code, first = np.unique(code, return_index=True)
    score = score[first]
    order = np.lexsort((code, -score))
    code, score = code[order], score[order]
    return np.stack([code // n, code % n], axis=1).reshape(-1, 2), score.astype(np.float32)


def archive_duplicates(out_dir: str | Path, data_dir: str | Path, *, threshold: float = 0.95,
                       k: int = 10, floor: float = DEFAULT_FLOOR, rule: VerifyRule | None = None,
                       engine: str = "local", address: str | None = None,
                       block: int = 4096, copy_k: int = DEFAULT_COPY_K) -> list[ArchivePair]:
    """Near-duplicate pairs of an embedded archive (see the module notes).

    Args:
        out_dir: the `embed-archive` output (shards and index.faiss).
        data_dir: the archive folder the shards' paths are relative to.
        threshold: cosine at which an unverified pair is still 'similar'.
        k, floor, block: candidate search (see `candidate_pairs`).
        rule: when a verified pair is a copy (None: the duplicate search's default).
        engine: 'local' (processes on this machine) or 'ray' (Ray tasks).
        address: Ray cluster for engine 'ray' (None: a local Ray).
        copy_k: most-voted files by shared local features added per file (0: none).

    Returns:
        Pairs with a kind (near misses dropped), best score first.

    Raises:
        ArchiveError: `out_dir` holds no shards and index, or `data_dir` is missing, holds no
            images, or is not the archive `out_dir` was made from (`check_archive_root`).
    """
    from core.embed.shard_format import INDEX_FILE, ArchiveError
    from core.embed.shards import check_archive_root

    rule = rule or VerifyRule()
    out = Path(out_dir)
    shards = [s for s in finished_shards(out) if s.n_vectors]
    if not shards or not (out / INDEX_FILE).is_file():
        raise ArchiveError(f"no shards and index in {out} (run embed-archive first)")
    root = check_archive_root(out, data_dir)  # every file read below is relative to it
    index = VectorIndex.load(out / INDEX_FILE)
    arrays = [np.load(s.vectors, mmap_mode="r") for s in shards]
    pairs, scores = candidate_pairs(arrays, index, k, floor, block)
    paths = read_archive_paths(out)
    if copy_k > 0:
        pairs, scores = _with_copy_candidates(arrays, pairs, scores, root, paths, out, copy_k)
    exact = np.array([_same_bytes(root / paths[i], root / paths[j]) for i, j in pairs], bool)
    todo = [(int(i), int(j)) for (i, j), e in zip(pairs, exact, strict=True) if not e]
    if engine == "ray":
        checked = verify_on_ray(root, paths, todo, address)
    else:
        checked = _verify_local(root, paths, todo)
    result = []
    for (i, j), s, e in zip(pairs.tolist(), scores.tolist(), exact.tolist(), strict=True):
        inliers, agree = checked.get((i, j), (None, None))
        copy = inliers is not None and bool(rule.passes(np.array(inliers), np.array(agree)))
        kind = "exact" if e else "copy" if copy else "similar" if s >= threshold - 1e-9 else ""
        if kind:
            a, b = sorted((paths[i], paths[j]))
            result.append(ArchivePair(a, b, s, kind, inliers, agree))
    return result


def _with_copy_candidates(arrays: Sequence[np.ndarray], pairs: np.ndarray, scores: np.ndarray,
                          root: Path, paths: list[str], out: Path, copy_k: int) -> tuple[np.ndarray, np.ndarray]:
    """The embedding's pairs and the copy candidates, each with its exact cosine, best first."""
    table = image_features(root, paths, cache=out / FEATURES)
    voted = copy_candidate_pairs(table, k=copy_k)
    n = len(paths)
    have = set((pairs[:, 0] * n + pairs[:, 1]).tolist())
    new = np.array([p for p in voted.tolist() if p[0] * n + p[1] not in have], np.int64).reshape(-1, 2)
    if not len(new):
        return pairs, scores
    va, vb = gather_rows(list(arrays), new[:, 0]), gather_rows(list(arrays), new[:, 1])
    new_scores = np.einsum("pd,pd->p", va, vb).astype(np.float32)  # (P,) exact cosines
    pairs, scores = np.concatenate([pairs, new]), np.concatenate([scores, new_scores])
    order = np.lexsort((pairs[:, 1], pairs[:, 0], -scores))
    return pairs[order], scores[order]


def verify_chunk(root: str, pairs: list[tuple[str, str]]) -> list[tuple[int, float]]:
    """Verify pairs of files (relative to root): (inliers, agreement) each. A Ray task's body."""
    names = sorted({p for pair in pairs for p in pair})
    at = {name: x for x, name in enumerate(names)}
    table = image_features(root, names, workers=1)
    found = verify_many(table, [(at[a], at[b]) for a, b in pairs], workers=1)
    return [(int(inl), float(agree)) for inl, agree, _ in found]


def verify_on_ray(root: Path, paths: list[str], todo: list[tuple[int, int]],
                  address: str | None = None) -> dict[tuple[int, int], tuple[int, float]]:
    """Verify row pairs as Ray tasks of VERIFY_CHUNK pairs (the embedding cluster's Ray).

    Raises:
        ArchiveError: in one line, when the cluster can no longer run the tasks (`gather`).
    """
    if not todo:
        return {}
    from core.embed.ray_engine import gather, start_ray

    ray = start_ray(address)
    task = ray.remote(num_cpus=1)(verify_chunk)  # Ray reruns a task lost with its node
    chunks = [todo[s:s + VERIFY_CHUNK] for s in range(0, len(todo), VERIFY_CHUNK)]
    refs = [task.remote(str(root), [(paths[i], paths[j]) for i, j in c]) for c in chunks]
    out = {}
    found_all = gather(ray, refs, cpus=1, what="verification tasks")  # never waits for ever
    for chunk, found in zip(chunks, found_all, strict=True):
        out.update(zip(chunk, found, strict=True))
    return out


def _verify_local(root: Path, paths: list[str], todo: list[tuple[int, int]]
                  ) -> dict[tuple[int, int], tuple[int, float]]:
    out = {}
    for s in range(0, len(todo), VERIFY_CHUNK):
        chunk = todo[s:s + VERIFY_CHUNK]
        out.update(zip(chunk, verify_chunk(str(root), [(paths[i], paths[j]) for i, j in chunk]),
                       strict=True))
    return out


def _same_bytes(a: Path, b: Path) -> bool:
    """Identical files (size first, then SHA-256): an exact copy needs no verification."""
    try:
        if a.stat().st_size != b.stat().st_size:
            return False
        return _digest(a) == _digest(b)
    except OSError:
        return False


def _digest(path: Path) -> str:
    return file_sha256(path)
