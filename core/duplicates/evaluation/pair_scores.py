"""Scores of the two-stage detector (candidates, then geometry) per kind and per edit.

Used by `core.duplicates.evaluation.report` (`python -m core duplicates-eval`): the same sets as the
one-stage detectors, plus rows per kind (exact, copy, similar, same_patient: precision is the
share of that kind's pairs that are true duplicates, recall the share of true pairs found with
that kind) and per edit on the synthetic copies (a copy counts as found when it lands in its
original's group of exact and verified copies).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.duplicates.calibration.verification import VerifyCalibration
from core.duplicates.candidates import CandidatePair, find_pairs
from core.duplicates.copy_candidates import copy_candidate_pairs
from core.duplicates.hashing import HashTable
from core.duplicates.neighbours import connected_groups
from core.duplicates.proof import (
    DEFAULT_VERIFY_K,
    FEATURES,
    KINDS,
    SAME_FILM_KINDS,
    VERIFIED,
    calibrate_on_heldout,
    candidate_rows,
    file_stamps,
    verify_candidates,
)
from core.duplicates.rules import Rule, VerifyRule
from core.embed.embeddings import Embeddings
from core.geometry.features import FeatureTable, features_of, image_features


@dataclass(frozen=True)
class PairScores:
    """Precision, recall and F1 of flagged pairs against true pairs."""

    precision: float
    recall: float
    f1: float
    n_flagged: int
    n_true: int


def pair_scores(flagged: set[tuple[int, int]], truth: set[tuple[int, int]]) -> PairScores:
    """Score unordered pairs (given as (i, j) with i < j).

    Args:
        flagged: pairs a detector called duplicates; truth: the real duplicates.

    Returns:
        PairScores; precision is 1.0 when nothing is flagged, recall 1.0 when nothing is true.
    """
    tp = len(flagged & truth)
    precision = tp / len(flagged) if flagged else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PairScores(precision, recall, f1, len(flagged), len(truth))


def kind_scores(flagged: set[tuple[int, int]], truth: set[tuple[int, int]], n_true: int) -> PairScores:
    """One kind's share of the answer: precision within the kind, recall over all true pairs."""
    tp = len(flagged & truth)
    precision = tp / len(flagged) if flagged else 1.0
    recall = tp / n_true if n_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PairScores(precision, recall, f1, len(flagged), n_true)


@dataclass(frozen=True)
class SyntheticCopies:
    """A dataset with copies appended: rows >= len(base) are copies of row family[x] by edits[x]."""

    big: Embeddings
    hashes: HashTable
    base: Embeddings
    family: list[int]
    edits: list[str]
    pixels: list[np.ndarray]


@dataclass(frozen=True)
class ScoreRow:
    """One line of the duplicate evaluation: a detector's scores on one set of known pairs.

    precision_ci, recall_ci: 95 % bootstrap intervals where the row is an estimate (the
    calibration's own), else None.
    """

    set: str
    detector: str
    precision: float
    recall: float
    f1: float
    n_flagged: int
    n_true: int
    precision_ci: tuple[float, float] | None = None
    recall_ci: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if v is not None}
        return d | {k: list(d[k]) for k in ("precision_ci", "recall_ci") if k in d}


def _row(name: str, detector: str, s: PairScores) -> ScoreRow:
    return ScoreRow(name, detector, round(s.precision, 4), round(s.recall, 4), round(s.f1, 4),
                    s.n_flagged, s.n_true)


def _key(p: CandidatePair) -> tuple[int, int]:
    return min(p.i, p.j), max(p.i, p.j)


def verify_rule_for(out: Path, emb: Embeddings, hashes: HashTable, root: Path,
                    heldout: list[int] | None) -> tuple[VerifyRule, VerifyCalibration | None]:
    """The verification rule calibrated as `auto` does it (on copies of `heldout` images)."""
    table = image_features(root, emb.paths, cache=out / FEATURES)
    cal = calibrate_on_heldout(table, emb, hashes, root, heldout)
    return (cal.rule if cal else VerifyRule()), cal


def verified_rows(name: str, emb: Embeddings, hashes: HashTable, root: Path, out: Path, rule: Rule,
                  vrule: VerifyRule, truth: set[tuple[int, int]], k: int) -> list[ScoreRow]:
    """Rows for the two-stage detector and each kind on a dataset with known true pairs."""
    table = image_features(root, emb.paths, cache=out / FEATURES)
    pairs = verify_candidates(emb, hashes, find_pairs(emb, hashes, rule, k=k, near_misses=False), table,
                              vrule, cache=out / VERIFIED, stamps=file_stamps(root, emb.paths))
    dup = {_key(p) for p in pairs if p.kind in SAME_FILM_KINDS}
    rows = [_row(name, "verified (exact + copy)", pair_scores(dup, truth))]
    for kind in KINDS:
        flagged = {_key(p) for p in pairs if p.kind == kind}
        rows.append(_row(name, f"kind {kind}", kind_scores(flagged, truth, len(truth))))
    return rows


def synthetic_verified_rows(c: SyntheticCopies, root: Path, out: Path, rule: Rule, vrule: VerifyRule,
                            k: int) -> list[ScoreRow]:
    """Rows for the two-stage detector on copies: overall, per kind and per edit.

    Every original has one copy per edit here, so its copies fill one another's neighbour
    lists; each image's verified neighbours are DEFAULT_VERIFY_K plus the copies per original,
    so an original keeps the DEFAULT_VERIFY_K slots it would have in an archive with one copy.
    """
    per_original = max(c.family.count(i) for i in set(c.family)) if c.family else 0
    n = len(c.base)
    base = image_features(root, c.base.paths, cache=out / FEATURES)
    table = FeatureTable(c.big.paths, base.items + [features_of(p) for p in c.pixels], dict(base.bad))
    stage_one = find_pairs(c.big, c.hashes, rule, k=k, near_misses=False)
    per = DEFAULT_VERIFY_K + per_original
    voted = copy_candidate_pairs(table, k=per)
    pairs = verify_candidates(c.big, c.hashes, stage_one, table, vrule, k=per, voted=voted)
    rows = candidate_recall_rows(c, voted, stage_one, per)
    fam = {i: i for i in c.family} | {n + x: i for x, i in enumerate(c.family)}
    mine = [p for p in pairs if max(p.i, p.j) >= n]  # pairs that involve a copy
    true_of = {_key(p): fam.get(p.i, -1) == fam.get(p.j, -2) for p in mine}
    group = np.arange(n + len(c.family))
    for g in connected_groups(len(group), [_key(p) for p in pairs if p.kind in SAME_FILM_KINDS]):
        group[g] = g[0]
    found = np.array([group[n + x] == group[i] for x, i in enumerate(c.family)], bool)
    edits = np.array(c.edits)
    name = "cxr synthetic copies"

    def add(detector: str, sel: list[CandidatePair], hits: np.ndarray) -> None:
        tp = sum(true_of[_key(p)] for p in sel)
        precision = tp / len(sel) if sel else 1.0
        recall = float(hits.mean()) if hits.size else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(_row(name, detector, PairScores(precision, recall, f1, len(sel), int(hits.size))))

    dup = [p for p in mine if p.kind in SAME_FILM_KINDS]
    add("verified (exact + copy)", dup, found)
    for kind in KINDS:
        sel = [p for p in mine if p.kind == kind]
        hit_rows = {r for p in sel if true_of[_key(p)] for r in (p.i, p.j)}
        add(f"kind {kind}", sel, np.array([n + x in hit_rows for x in range(len(c.family))], bool))
    for edit in dict.fromkeys(c.edits):
        rows_e = {n + x for x in np.flatnonzero(edits == edit)}
        add(f"edit {edit}", [p for p in dup if p.i in rows_e or p.j in rows_e], found[edits == edit])
    return rows


def candidate_recall_rows(c: SyntheticCopies, voted: np.ndarray, stage_one: list[CandidatePair],
                          k: int) -> list[ScoreRow]:
    """Candidate recall: the share of copies whose original is among the pairs verified.

    One row per candidate source: the class embedding's kNN with stage one's pairs, the shared
    local features alone (`voted`, from `core.duplicates.copy_candidates`), and both (what is
    verified).
    Precision is the share of a source's pairs that involve a copy and are true.
    """
    n = len(c.base)
    fam = np.array(list(range(n)) + list(c.family))
    sources = {"embedding kNN + stage one": candidate_rows(c.big, c.hashes, stage_one, k),
               "shared local features": voted}
    sources["both (verified)"] = np.unique(np.concatenate(list(sources.values())), axis=0)
    truth = {(i, n + x) for x, i in enumerate(c.family)}
    out = []
    for source, arr in sources.items():
        got = {(int(a), int(b)) for a, b in arr}
        mine = [(a, b) for a, b in got if b >= n]
        hits = np.array([p in got for p in sorted(truth)], bool)
        tp = sum(fam[a] == fam[b] for a, b in mine)
        precision = tp / len(mine) if mine else 1.0
        recall = float(hits.mean()) if hits.size else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append(_row("cxr synthetic copies", f"candidates: {source}",
                        PairScores(precision, recall, f1, len(mine), int(hits.size))))
        out += _edit_recall_rows(source, got, c, n) if source == "both (verified)" else []
    return out


def _edit_recall_rows(source: str, got: set[tuple[int, int]], c: SyntheticCopies, n: int) -> list[ScoreRow]:
    """Candidate recall per edit family for one source."""
    rows = []
    edits = np.array(c.edits)
    found = np.array([(i, n + x) in got for x, i in enumerate(c.family)], bool)
    for edit in dict.fromkeys(c.edits):
        r = float(found[edits == edit].mean())
        rows.append(_row("cxr synthetic copies", f"candidates {source}: edit {edit}",
                         PairScores(1.0, r, 2 * r / (1 + r) if r else 0.0, 0, int((edits == edit).sum()))))
    return rows


def interval_row(cal: VerifyCalibration) -> ScoreRow:
    """The calibration's own estimate, at its prevalence, with 95 % bootstrap intervals."""
    p, r = cal.precision, cal.recall
    f1 = 2 * p.value * r.value / (p.value + r.value) if p.value + r.value else 0.0
    return ScoreRow(f"val copies (calibration, prevalence {cal.prevalence:g})", "verification",
                    p.value, r.value, round(f1, 4),
                    int(cal.rule.passes(cal.pos_inliers, cal.pos_agreement).sum()),
                    int(cal.pos_inliers.size), (p.low, p.high), (r.low, r.high))
