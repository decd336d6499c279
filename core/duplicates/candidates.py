"""Near-duplicate pairs of a dataset: mined from embeddings and pHashes, flagged by a rule, grouped.

Pairs come from two independent sources, neither ever comparing all pairs:
- each image's k nearest neighbours by cosine above a floor (`core.duplicates.neighbours`, blocked or FAISS);
- pHash neighbours within the rule's hash threshold (`core.duplicates.hashing.near_hash_pairs`).
Every pair then carries both signals. The rule (`core.duplicates.rules.Rule`) flags duplicates;
exact pixel copies are always flagged, and so are two files of one DICOM instance (one
`SOPInstanceUID`: the same image exported twice), whatever their pixels or embeddings say.
Pairs a little under the rule are kept, unflagged, so reviewers also see near misses and
their verdicts can move the threshold down as well as up.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from core.duplicates.hashing import HashTable, hamming_many, near_hash_pairs
from core.duplicates.neighbours import connected_groups, mine_pair_arrays
from core.duplicates.rules import Rule
from core.embed.embeddings import Embeddings
from core.index.vectors import VectorIndex

DEFAULT_K = 10
DEFAULT_HASH_THRESHOLD = 4  # with a fixed cosine threshold; 'auto' calibrates it
NEAR_MISS_MARGIN = 0.5  # near misses reach down to t - margin * (1 - t)
MAX_NEAR_MISSES = 5_000  # the best ones; enough to calibrate on, small enough to page through


@dataclass(frozen=True)
class CandidatePair:
    """Two images and the evidence that they are the same radiograph.

    a < b are paths relative to the dataset root; i, j their rows in the embeddings.
    """

    a: str
    b: str
    i: int
    j: int
    score: float  # cosine similarity of the embeddings
    hash_distance: int  # pHash Hamming distance, 0..64
    exact: bool  # identical pixels
    cross_split: bool  # the two sit in different splits: a leakage risk
    same_patient: bool
    flagged: bool  # the rule, an exact copy or a verified copy calls it a duplicate
    kind: str = ""  # exact | copy | similar | same_patient ("" for an unflagged near miss)
    inliers: int | None = None  # geometric verification: RANSAC inliers (None: not verified)
    agreement: float | None = None  # ... and the aligned overlap's agreement (0..1)

    def to_dict(self) -> dict:
        """The pair as JSON-ready values (scores rounded to 6 decimals)."""
        return {"a": self.a, "b": self.b, "score": round(self.score, 6),
                "hash_distance": self.hash_distance, "exact": self.exact,
                "cross_split": self.cross_split, "same_patient": self.same_patient,
                "flagged": self.flagged, "kind": self.kind, "inliers": self.inliers,
                "agreement": None if self.agreement is None else round(self.agreement, 4)}


def near_miss_floor(threshold: float) -> float:
    """Lowest cosine kept as an unflagged near miss below `threshold`."""
    return max(-1.0, threshold - NEAR_MISS_MARGIN * max(1.0 - threshold, 0.01))


def find_pairs(emb: Embeddings, hashes: HashTable, rule: Rule, k: int = DEFAULT_K,
               block: int = 4096, index: VectorIndex | None = None,
               near_misses: bool = True, instances: list[str] | None = None) -> list[CandidatePair]:
    """Candidate pairs with both signals, flagged by `rule`, best score first.

    Args:
        emb: the dataset's embeddings (N rows) with paths, splits and patients.
        hashes: pHashes aligned with `emb.paths`.
        rule: the detector.
        k: neighbours per image from the embedding.
        block: rows per similarity tile (memory ~ block^2 floats).
        index: FAISS index over `emb.vectors` for very large sets (approximate if HNSW).
        near_misses: keep unflagged pairs down to `near_miss_floor(rule.threshold)` (at most
            MAX_NEAR_MISSES, the highest first).
        instances: per row its SOPInstanceUID ("" unknown); rows sharing one are exact pairs.

    Returns:
        Pairs sorted by score descending, then paths.
    """
    n = len(emb)
    if n < 2:
        return []
    floor = min(rule.threshold, 1.0)
    if near_misses:
        floor = near_miss_floor(floor)
    mined = mine_pair_arrays(emb.vectors, floor, k=k, block=block, index=index)
    codes = [mined.i * n + mined.j]
    if rule.hash_threshold >= 0:
        valid = np.ones(n, bool)
        valid[list(hashes.bad)] = False
        hi, hj, _ = near_hash_pairs(hashes.phash, min(rule.hash_threshold, 16), valid)
        codes.append(hi * n + hj)
    exact_i, exact_j = _exact_pairs(hashes.digests)
    codes.append(exact_i * n + exact_j)
    sop_i, sop_j = _exact_pairs(instances or [])
    codes.append(sop_i * n + sop_j)
    same_instance = set((sop_i * n + sop_j).tolist())
    code = np.unique(np.concatenate(codes))
    i, j = code // n, code % n
    score = np.einsum("pd,pd->p", emb.vectors[i], emb.vectors[j])  # (P,)
    dist = hamming_many(hashes.phash[i], hashes.phash[j])  # (P,)
    bad = np.zeros(n, bool)
    bad[list(hashes.bad)] = True
    dist = np.where(bad[i] | bad[j], 64, dist)
    flagged = rule.flags(score, dist)
    out = []
    for p in range(code.size):
        a, b = int(i[p]), int(j[p])
        exact = hashes.exact(a, b) or int(code[p]) in same_instance
        sa, sb = emb.splits[a], emb.splits[b]
        pa, pb = emb.patients[a], emb.patients[b]
        out.append(CandidatePair(emb.paths[a], emb.paths[b], a, b, float(score[p]), int(dist[p]),
                                 exact, bool(sa and sb and sa != sb), bool(pa and pa == pb),
                                 bool(flagged[p] or exact)))
    out = sorted((ordered(p) for p in out), key=lambda p: (-p.score, p.a, p.b))
    misses = [p for p in out if not p.flagged][MAX_NEAR_MISSES:]
    if misses:
        dropped = {(p.a, p.b) for p in misses}
        out = [p for p in out if (p.a, p.b) not in dropped]
    return out


def ordered(p: CandidatePair) -> CandidatePair:
    """Paths in sorted order (the review store's key), rows swapped with them."""
    if p.a < p.b:
        return p
    return replace(p, a=p.b, b=p.a, i=p.j, j=p.i)


def _exact_pairs(keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of rows with one non-empty key (a pixel digest, a SOPInstanceUID), i < j."""
    by_digest: dict[str, list[int]] = {}
    for row, digest in enumerate(keys):
        if digest:
            by_digest.setdefault(digest, []).append(row)
    pairs = [(a, b) for rows in by_digest.values() if len(rows) > 1
             for x, a in enumerate(rows) for b in rows[x + 1:]]
    arr = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def duplicate_groups(n: int, pairs: list[CandidatePair]) -> list[list[int]]:
    """Connected components of the flagged pairs: an image copied five times is one group.

    Args:
        n: number of images.
        pairs: candidate pairs (unflagged ones are ignored).

    Returns:
        Groups of row ids, largest first.
    """
    return connected_groups(n, [(p.i, p.j) for p in pairs if p.flagged])


