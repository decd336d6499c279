"""Stage two of the duplicate search: verify candidate pairs by geometry and give each a kind.

Candidates are every image's k nearest neighbours above a low cosine floor, its k most-voted
images by shared local features (`core.duplicates.copy_candidates`: the copy candidates, which
owe nothing to the class embedding), the near-hash pairs and the exact-digest pairs (stage
one, `core.duplicates.candidates`). Each is settled
by the cheapest signal that can settle it:
- exact: identical pixels (digest); never verified, nothing could change the answer;
- copy: geometrically verified (`core.geometry.verify`): the same film, transformed;
- same_patient / similar: flagged by the embedding or hash rule but not the same film (a
  serial film of one patient, or a look-alike): a reviewer still wants to see it.
Unflagged candidates keep kind "" (near misses). Verification results are cached in
`verified.csv`, keyed by both paths and both files' (mtime, size), so a re-run verifies only
new or changed pairs, and only results of this version of the check (`VERIFIER`).
"""

from __future__ import annotations

import csv
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from core.duplicates.calibration.known_pairs import singletons
from core.duplicates.calibration.verification import VerifyCalibration, calibrate_verification
from core.duplicates.candidates import CandidatePair, ordered
from core.duplicates.copy_candidates import copy_candidate_pairs
from core.duplicates.hashing import HashTable, hamming_many
from core.duplicates.neighbours import mine_pair_arrays
from core.duplicates.rules import VerifyRule
from core.embed.embeddings import Embeddings
from core.files import atomic_write_csv
from core.geometry.features import FeatureTable, image_features
from core.geometry.verify import VERIFIER, verify_many

KINDS = ("exact", "copy", "similar", "same_patient")
PAIR_KINDS = KINDS  # the facade's name for them
SAME_FILM_KINDS = ("exact", "copy")  # the kinds that claim "the same film"
DEFAULT_VERIFY_K = 5
DEFAULT_FLOOR = 0.5  # lowest cosine a candidate may have; a crop+rotation+gamma copy sits ~0.8-0.95
FEATURES = "features.npz"
VERIFIED = "verified.csv"
_CACHE_FIELDS = ("a", "b", "stamp_a", "stamp_b", "inliers", "agreement", "overlap", "verifier")


def geometric_stage(out: Path, emb: Embeddings, hashes: HashTable, root: Path,
                    pairs: list[CandidatePair], heldout: list[int] | None, rule: VerifyRule | None,
                    *, target: float = 0.99, seed: int = 0, k: int = DEFAULT_VERIFY_K,
                    floor: float = DEFAULT_FLOOR, workers: int = 0, n_heldout: int = 60,
                    n_bystanders: int = 300) -> tuple[list[CandidatePair], VerifyRule, dict | None]:
    """Features (cached), the verification rule (given, or calibrated), then verified pairs.

    Args:
        out: the search's output folder (features.npz and verified.csv go there).
        emb, hashes, root: the dataset; pairs: stage-one pairs.
        heldout: rows the model did not train on (calibration originals; None: any row).
        rule: the rule to use, or None to calibrate one on copies of held-out images.
        target, seed: calibration's precision target and seed.
        k, floor, workers: see `verify_candidates`.
        n_heldout, n_bystanders: originals copied and extra rows whose neighbours are negatives.

    Returns:
        (pairs with kinds, the rule used, the calibration as a dict or None).
    """
    table = image_features(root, emb.paths, cache=out / FEATURES, workers=workers)
    calibration = None
    if rule is None:
        cal = calibrate_on_heldout(table, emb, hashes, root, heldout, target=target, seed=seed, k=k,
                                   workers=workers, n_heldout=n_heldout, n_bystanders=n_bystanders)
        rule = cal.rule if cal else VerifyRule()
        calibration = cal.to_dict() if cal else None
    verified = verify_candidates(emb, hashes, pairs, table, rule, k=k, floor=floor, cache=out / VERIFIED,
                                 stamps=file_stamps(root, emb.paths), workers=workers)
    return verified, rule, calibration


def calibrate_on_heldout(table: FeatureTable, emb: Embeddings, hashes: HashTable, root: Path,
                         heldout: list[int] | None, *, target: float = 0.99, seed: int = 0,
                         k: int = DEFAULT_VERIFY_K, workers: int = 0, n_heldout: int = 60,
                         n_bystanders: int = 300) -> VerifyCalibration | None:
    """Calibrate the verification rule on copies of held-out images without a near copy."""
    rng = np.random.default_rng([seed, 12])
    eligible = singletons(hashes, range(len(emb)) if heldout is None else heldout)
    originals = sorted(rng.choice(eligible, min(n_heldout, len(eligible)), replace=False).tolist()) \
        if eligible else []
    others = np.setdiff1d(singletons(hashes, range(len(emb))), originals)
    bystanders = rng.choice(others, min(n_bystanders, len(others)), replace=False).tolist()
    return calibrate_verification(root, emb.paths, emb.vectors, table, originals, bystanders,
                                  k=k, target=target, seed=seed, workers=workers)


def kind_of(exact: bool, copy: bool, flagged: bool, same_patient: bool) -> str:
    """The kind of a pair from its evidence ("" for an unflagged near miss)."""
    if exact:
        return "exact"
    if copy:
        return "copy"
    if not flagged:
        return ""
    return "same_patient" if same_patient else "similar"


def candidate_rows(emb: Embeddings, hashes: HashTable, pairs: list[CandidatePair],
                   k: int = DEFAULT_VERIFY_K, floor: float = DEFAULT_FLOOR,
                   table: FeatureTable | None = None, voted: np.ndarray | None = None) -> np.ndarray:
    """Row pairs (i < j) to verify: kNN above `floor`, the k most-voted images by shared local
    features (when `table` is given; `voted`: those pairs, already found), and every listed
    non-exact pair.

    Returns:
        (P, 2) int64, unique.
    """
    n = len(emb)
    mined = mine_pair_arrays(emb.vectors, floor, k=k)
    codes = [np.minimum(mined.i, mined.j) * n + np.maximum(mined.i, mined.j)]
    if table is not None and voted is None:
        voted = copy_candidate_pairs(table, k=k)
    if voted is not None:
        codes.append(voted[:, 0] * n + voted[:, 1])
    listed = [(min(p.i, p.j), max(p.i, p.j)) for p in pairs if not p.exact]
    if listed:
        arr = np.array(listed, np.int64)
        codes.append(arr[:, 0] * n + arr[:, 1])
    code = np.unique(np.concatenate(codes))
    rows = np.stack([code // n, code % n], axis=1)
    exact = np.array([hashes.exact(int(i), int(j)) for i, j in rows], bool).reshape(-1)
    return rows[~exact]


def verify_candidates(emb: Embeddings, hashes: HashTable, pairs: list[CandidatePair],
                      table: FeatureTable, rule: VerifyRule, *, k: int = DEFAULT_VERIFY_K,
                      floor: float = DEFAULT_FLOOR, cache: Path | None = None,
                      stamps: list[str] | None = None, workers: int = 0,
                      voted: np.ndarray | None = None) -> list[CandidatePair]:
    """Verify candidates, add verified copies to the pairs and give every pair its kind.

    Args:
        emb: embeddings (N rows) with paths, splits, patients.
        hashes: aligned hashes; pairs: stage-one pairs from `find_pairs`.
        table: aligned local features.
        rule: when a verified pair is a copy.
        k: neighbours per image verified; floor: their lowest cosine.
        cache: verified.csv to reuse and rewrite (None: no cache).
        stamps: per image "mtime_ns:size" (cache keys); required with `cache`.
        workers: verification processes (0: one per core).
        voted: the copy candidates of `table`, when already found (None: found here).

    Returns:
        Pairs sorted by (score desc, a, b) with kind, inliers and agreement; copies flagged.
    """
    n = len(emb)
    rows = candidate_rows(emb, hashes, pairs, k, floor, table, voted) if n > 1 else np.zeros((0, 2), np.int64)
    old = _read_cache(cache) if cache and stamps else {}
    results: dict[tuple[int, int], tuple[int, float, float]] = {}
    todo = []
    for i, j in rows.tolist():
        key = (emb.paths[i], emb.paths[j], stamps[i], stamps[j]) if stamps else None
        if key in old:
            results[(i, j)] = old[key]
        else:
            todo.append((i, j))
    for (i, j), r in zip(todo, verify_many(table, todo, workers=workers), strict=True):
        results[(i, j)] = r
    if cache and stamps:
        _write_cache(cache, [(emb.paths[i], emb.paths[j], stamps[i], stamps[j], *r, VERIFIER)
                             for (i, j), r in results.items()])
    by_rows = {(min(p.i, p.j), max(p.i, p.j)): p for p in pairs}
    out = []
    for key in set(by_rows) | set(results):
        p = by_rows.get(key) or _new_pair(emb, hashes, *key)
        inliers, agree, _ = results.get(key, (None, None, None))
        copy = inliers is not None and bool(rule.passes(inliers, agree))
        flagged = p.flagged or copy or p.exact
        out.append(replace(p, flagged=flagged, inliers=inliers, agreement=agree,
                           kind=kind_of(p.exact, copy, flagged, p.same_patient)))
    keep = [p for p in out if p.flagged or _listed(p, by_rows)]
    return sorted(keep, key=lambda p: (-p.score, p.a, p.b))


def _listed(p: CandidatePair, listed: dict) -> bool:
    """True when the pair came from stage one (near misses are kept, other verified pairs not)."""
    return (min(p.i, p.j), max(p.i, p.j)) in listed


def _new_pair(emb: Embeddings, hashes: HashTable, i: int, j: int) -> CandidatePair:
    """A candidate found only by the verification's kNN, with both cheap signals."""
    score = float(emb.vectors[i] @ emb.vectors[j])
    bad = i in hashes.bad or j in hashes.bad
    dist = 64 if bad else int(hamming_many(hashes.phash[i], hashes.phash[j]))
    si, sj, pi, pj = emb.splits[i], emb.splits[j], emb.patients[i], emb.patients[j]
    return ordered(CandidatePair(emb.paths[i], emb.paths[j], i, j, score, dist, hashes.exact(i, j),
                                 bool(si and sj and si != sj), bool(pi and pi == pj), False))


def file_stamps(root: Path, paths: list[str]) -> list[str]:
    """Per file "mtime_ns:size" ("" when missing): a verification is reused only for unchanged files."""
    out = []
    for p in paths:
        try:
            st = os.stat(root / p)
            out.append(f"{st.st_mtime_ns}:{st.st_size}")
        except OSError:
            out.append("")
    return out


def _read_cache(path: Path) -> dict[tuple[str, str, str, str], tuple[int, float, float]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != _CACHE_FIELDS:
                return {}
            return {(r["a"], r["b"], r["stamp_a"], r["stamp_b"]):
                    (int(r["inliers"]), float(r["agreement"]), float(r["overlap"])) for r in reader
                    if r["verifier"] == VERIFIER}  # another check's results are not reused
    except (OSError, csv.Error, UnicodeDecodeError, ValueError, KeyError):
        return {}


def _write_cache(path: Path, rows: list[tuple]) -> None:
    atomic_write_csv(path, _CACHE_FIELDS, rows)
