"""Copy candidates that owe nothing to the class embedding: images that share local features.

The class embedding groups similar patients' films; finding the same film is another job, and
a copy rotated by a few degrees or cropped to another aspect is often not among its original's
nearest in it (issue 31). Here each image's first DESCRIPTORS ORB descriptors (the ones the
geometric check already computed, `core.geometry.features`) go into one FAISS binary index;
every descriptor of an image looks up its VOTE_K nearest descriptors within MAX_BITS bits, each
hit is a vote for the image it belongs to, and an image's k most-voted other images (at least
MIN_VOTES votes) are its candidates. A copy shares tens to hundreds of keypoints with its
original whatever the crop, rotation, stretch, gamma or re-encode; look-alike films share few.

Measured on the development set (benchmarks/README.md "Copy candidates"): the original is among
a synthetic copy's 5 most-voted images for 0.991 of copies with 200 descriptors an image (0.93
with 100), where three centre-crop pHashes within 4 bits found 0.48 and off-centre crops none.
Memory: 32 bytes a descriptor, 6.4 kB an image (640 MB per 100k images) plus FAISS's index.
An exact (flat) index is used up to EXACT_LIMIT descriptors, an inverted-file one above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from core.geometry.features import FeatureTable

DESCRIPTORS = 200  # per image; 100 found 0.93 of the copies, 200 found 0.99
VOTE_K = 3  # nearest descriptors looked up per descriptor
MAX_BITS = 40  # of 256: a farther descriptor is no match (ORB matches sit well under 64)
MIN_VOTES = 3  # fewer shared descriptors: no candidate
DEFAULT_COPY_K = 5  # most-voted images per image
EXACT_LIMIT = 100_000  # descriptors (500 images): an exact index up to here, an inverted file above
NPROBE = 32  # inverted lists searched: 0.917 of the copies against 0.935 exact, 13x faster (dev set)
_BLOCK = 256  # query images per search


def _descriptors(table: FeatureTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(D, 32) uint8 descriptors, (D,) their image rows, (N + 1,) each image's offset."""
    parts = [np.zeros((0, 32), np.uint8) if f is None else np.ascontiguousarray(f.desc[:DESCRIPTORS])
             for f in table.items]
    counts = np.array([len(p) for p in parts], np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    desc = np.concatenate(parts) if parts else np.zeros((0, 32), np.uint8)
    return desc, np.repeat(np.arange(len(parts)), counts), offsets


def _index(desc: np.ndarray):
    """A FAISS binary index over (D, 32) descriptors: exact, or an inverted file when large."""
    import faiss

    if len(desc) <= EXACT_LIMIT:
        index = faiss.IndexBinaryFlat(256)
    else:
        nlist = int(4 * math.sqrt(len(desc)))
        index = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(256), 256, nlist)
        rng = np.random.default_rng(0)
        index.train(desc[rng.choice(len(desc), min(len(desc), 64 * nlist), replace=False)])
        index.nprobe = NPROBE
    index.add(desc)
    return index


def copy_candidate_pairs(table: FeatureTable, k: int = DEFAULT_COPY_K,
                         rows: Sequence[int] | None = None) -> np.ndarray:
    """Each image's k most-voted other images by shared ORB descriptors (see the module notes).

    Args:
        table: every image's features (unreadable ones have none and take part in nothing).
        k: candidates per image.
        rows: the images to find candidates for (None: all); candidates come from all.

    Returns:
        (P, 2) int64 row pairs, i < j, unique, sorted.
    """
    desc, owner, offsets = _descriptors(table)
    n = len(table.items)
    if len(desc) == 0 or n < 2 or k < 1:
        return np.zeros((0, 2), np.int64)
    index = _index(desc)
    queries = np.arange(n) if rows is None else np.asarray(sorted(set(rows)), np.int64)
    codes = []
    for s in range(0, len(queries), _BLOCK):
        block = queries[s:s + _BLOCK]
        sel = np.concatenate([np.arange(offsets[r], offsets[r + 1]) for r in block])  # (Q,)
        if not sel.size:
            continue
        dist, ids = index.search(desc[sel], VOTE_K)  # (Q, VOTE_K) each
        q_img = np.repeat(owner[sel][:, None], VOTE_K, axis=1)
        ok = (ids >= 0) & (dist <= MAX_BITS)
        q, c = q_img[ok], owner[ids[ok]]
        keep = q != c
        code, votes = np.unique(q[keep] * n + c[keep], return_counts=True)
        strong = votes >= MIN_VOTES
        code, votes = code[strong], votes[strong]
        qi = code // n
        order = np.lexsort((-votes, qi))  # by query image, most votes first
        qi, code = qi[order], code[order]
        first = np.r_[True, qi[1:] != qi[:-1]]
        rank = np.arange(len(qi)) - np.maximum.accumulate(np.where(first, np.arange(len(qi)), 0))
        top = code[rank < k]
        a, b = top // n, top % n
        codes.append(np.minimum(a, b) * n + np.maximum(a, b))
    if not codes:
        return np.zeros((0, 2), np.int64)
    code = np.unique(np.concatenate(codes))
    return np.stack([code // n, code % n], axis=1).astype(np.int64)
