"""Leakage between a run's splits: flagged pairs across splits, and patients in two splits."""

from __future__ import annotations

from dataclasses import dataclass

from core.duplicates.candidates import CandidatePair
from core.embed.embeddings import Embeddings

MAX_PATIENT_PAIRS = 10_000


@dataclass(frozen=True)
class PatientLeak:
    """Two images of one patient in different splits, with their cosine."""

    patient: str
    a: str
    b: str
    split_a: str
    split_b: str
    score: float

@dataclass(frozen=True)
class LeakageReport:
    """What could inflate test metrics: duplicates and patients shared across splits."""

    cross_split_pairs: list[CandidatePair]  # flagged pairs only
    patient_leaks: list[PatientLeak]
    n_patients_across_splits: int

def leakage_report(emb: Embeddings, pairs: list[CandidatePair]) -> LeakageReport:
    """Flagged cross-split pairs, and images of one patient that sit in different splits.

    Args:
        emb: embeddings with splits and patient ids.
        pairs: candidate pairs from `find_pairs`.

    Returns:
        LeakageReport; patient pairs are capped at MAX_PATIENT_PAIRS, highest cosine first.
    """
    by_patient: dict[str, list[int]] = {}
    for row, patient in enumerate(emb.patients):
        if patient and emb.splits[row]:
            by_patient.setdefault(patient, []).append(row)
    leaks: list[PatientLeak] = []
    n_patients = 0
    for patient, rows in sorted(by_patient.items()):
        if len({emb.splits[r] for r in rows}) < 2:
            continue
        n_patients += 1
        for x, a in enumerate(rows):
            for b in rows[x + 1:]:
                if emb.splits[a] != emb.splits[b]:
                    a2, b2 = (a, b) if emb.paths[a] < emb.paths[b] else (b, a)
                    leaks.append(PatientLeak(patient, emb.paths[a2], emb.paths[b2],
                                             emb.splits[a2], emb.splits[b2],
                                             float(emb.vectors[a] @ emb.vectors[b])))
    leaks.sort(key=lambda leak: (-leak.score, leak.a, leak.b))
    return LeakageReport([p for p in pairs if p.flagged and p.cross_split],
                         leaks[:MAX_PATIENT_PAIRS], n_patients)
