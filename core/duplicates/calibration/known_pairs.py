"""Known near-duplicates for calibration: copies of held-out images and their nearest impostors.

Each held-out image gets one copy per edit in `core.duplicates.calibration.edits.EDIT_KINDS` (crop, rescale,
gamma, noise, JPEG re-encode, small rotation, burned-in text). A copy and its original form a
positive pair. Negatives are the hardest non-duplicates a miner would meet: for the original,
every copy and a sample of other images ("bystanders", most images have no duplicate), its
nearest images in the dataset (other than the original, or itself) by embedding and by pHash.
Both kinds of pair carry both signals, so any rule over (score, hash distance) can be scored
on the same sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.data.imageio import ImageReadError, load_image, to_uint8
from core.duplicates.calibration.edits import EDIT_KINDS, make_copy
from core.duplicates.hashing import HashTable, hamming_many, hash_pixels, near_hash_pairs
from core.embed.encoder import Encoder

COPY_SIDE = 256  # originals are shrunk to this longer side (aspect kept) before editing


@dataclass(frozen=True)
class SyntheticSet:
    """Scored pairs with known answers.

    pos_*: (P,) one per (original, copy); neg_*: (M,) one per (query, nearest non-duplicate).
    Scores are cosine similarities, hash values pHash Hamming distances (0..64).
    """

    pos_score: np.ndarray
    pos_hash: np.ndarray
    pos_kind: list[str]
    neg_score: np.ndarray
    neg_hash: np.ndarray
    originals: list[str]  # the held-out images used, relative paths


def singletons(hashes: HashTable, candidates: Sequence[int], clean_distance: int = 2) -> list[int]:
    """Candidates with no other image within `clean_distance` pHash bits nor the same pixels.

    An image that already has a copy in the dataset would make that copy look like a
    non-duplicate impostor, so such images are not used as originals.
    """
    valid = np.ones(len(hashes.paths), bool)
    valid[list(hashes.bad)] = False
    i, j, _ = near_hash_pairs(hashes.phash, clean_distance, valid)
    taken = set(i.tolist()) | set(j.tolist())
    return [c for c in candidates if c not in taken and c not in hashes.bad]


def make_copies(pixels: np.ndarray, rng: np.random.Generator,
                kinds: Sequence[str] = EDIT_KINDS) -> list[np.ndarray]:
    """Near-duplicate copies of one image, decoded back to pixels as a reader would see them.

    Args:
        pixels: (H, W) float in [0, 1].
        rng: randomness for each edit's strength.
        kinds: edits from EDIT_KINDS.

    Returns:
        One (H', W') float32 array per kind (the edit decides the size).
    """
    img = Image.fromarray(to_uint8(pixels), mode="L")
    img.thumbnail((COPY_SIDE, COPY_SIDE), Image.Resampling.BILINEAR)  # keeps the aspect ratio
    out = []
    for kind in kinds:
        encoded = make_copy(img, kind, rng)
        out.append(load_image(encoded.data, name=f"copy{encoded.suffix}").pixels)
    return out


def build_synthetic_set(encoder: Encoder, root: str | Path, paths: Sequence[str],
                        vectors: np.ndarray, hashes: HashTable, heldout: Sequence[int],
                        kinds: Sequence[str] = EDIT_KINDS, neg_k: int = 5, seed: int = 0,
                        block: int = 256, bystanders: Sequence[int] = ()) -> SyntheticSet:
    """Copy held-out images, embed and hash the copies, and find every query's impostors.

    Args:
        encoder: the run's model.
        root: dataset root; `paths` (N) are relative to it.
        vectors: (N, D) unit embeddings of the dataset, rows aligned with `paths`.
        hashes: the dataset's hashes, aligned with `paths`.
        heldout: row ids of the originals (images the model did not train on).
        kinds: edits to apply, one copy per kind per original.
        neg_k: nearest non-duplicates kept per query and per signal.
        seed: seeds the edits.
        block: queries compared with the dataset at a time (memory block x N).
        bystanders: more dataset rows whose nearest other images count as negatives, so the
            impostors of images without any duplicate (most of a dataset) are counted too.

    Returns:
        SyntheticSet with len(heldout) * len(kinds) positives.
    """
    rng = np.random.default_rng(seed)
    origin: list[int] = []  # (Q,) dataset row of each query's original
    query_pixels: list[np.ndarray] = []
    pos_kind: list[str] = []
    used: list[int] = []
    for i in heldout:
        try:
            pixels = load_image(Path(root) / paths[i], name=paths[i]).pixels
        except ImageReadError:
            continue
        used.append(i)
        copies = make_copies(pixels, rng, kinds)
        origin += [i] * len(copies)
        query_pixels += copies
        pos_kind += list(kinds)
    copy_vec = encoder.embed(query_pixels)  # (C, D)
    copy_hash = np.array([hash_pixels(p).phash for p in query_pixels], dtype=np.uint64)  # (C,)
    origin_arr = np.array(origin, dtype=np.int64)
    pos_score = np.einsum("cd,cd->c", copy_vec, vectors[origin_arr]) if len(origin) else np.zeros(0)
    pos_hash = hamming_many(copy_hash, hashes.phash[origin_arr])
    # Queries for impostors: the originals, the bystanders, then every copy; each query's own
    # original (or itself) is left out of its neighbours.
    own = np.array(list(used) + [b for b in bystanders if b not in set(used)], np.int64)
    q_vec = np.concatenate([vectors[own], copy_vec]) if own.size else copy_vec
    q_hash = np.concatenate([hashes.phash[own], copy_hash])
    q_origin = np.concatenate([own, origin_arr])
    neg_s, neg_h = _impostors(q_vec, q_hash, q_origin, vectors, hashes, neg_k, block)
    return SyntheticSet(pos_score.astype(np.float32), pos_hash, pos_kind, neg_s, neg_h,
                        [paths[i] for i in used])


def _impostors(q_vec: np.ndarray, q_hash: np.ndarray, q_origin: np.ndarray, vectors: np.ndarray,
               hashes: HashTable, k: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Each query's k nearest dataset images by cosine and k nearest by pHash, original excluded."""
    n = vectors.shape[0]
    k = min(k, n - 1)
    scores, dists = [], []
    unreadable = np.zeros(n, bool)
    unreadable[list(hashes.bad)] = True
    for s in range(0, len(q_vec), block):
        sims = q_vec[s:s + block] @ vectors.T  # (B, N)
        d = hamming_many(q_hash[s:s + block, None], hashes.phash[None, :])  # (B, N)
        rows = np.arange(sims.shape[0])
        sims[rows, q_origin[s:s + block]] = -np.inf  # the original is the positive, not an impostor
        d[rows, q_origin[s:s + block]] = 1 << 20
        d[:, unreadable] = 1 << 20
        by_emb = np.argpartition(-sims, k - 1, axis=1)[:, :k]  # (B, k)
        by_hash = np.argpartition(d, k - 1, axis=1)[:, :k]  # (B, k)
        picked = np.concatenate([by_emb, by_hash], axis=1)  # (B, 2k)
        picked = np.sort(picked, axis=1)
        fresh = np.ones(picked.shape, bool)
        fresh[:, 1:] = picked[:, 1:] != picked[:, :-1]  # an image near on both counts, once
        r, c = np.nonzero(fresh)
        scores.append(sims[r, picked[r, c]])
        dists.append(d[r, picked[r, c]])
    if not scores:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    return np.concatenate(scores).astype(np.float32), np.concatenate(dists).astype(np.int64)
