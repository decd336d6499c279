"""What the Map and Search pages read from a run besides its model, as plain data.

Per-class retrieval quality (from `evaluation.json`), the duplicate groups (from the duplicate
search's `duplicates.json`, when one was made), the label vote of a result list, the results as
CSV, and a timed query (a dataset image picked as the query left out of its own results).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.data.patient_ids import display_patient
from core.duplicates.search import DuplicateResult, load_result
from core.embed.embeddings import Embeddings
from core.files import csv_bytes
from core.retrieval.evaluate import load_evaluation
from core.retrieval.search import Hit
from core.run_folder import RunError


@dataclass(frozen=True)
class ClassQuality:
    """Retrieval quality of the test queries of one class."""

    label: str
    precision_at_5: float
    map: float
    map_at_r: float
    n_queries: int


@dataclass(frozen=True)
class LabelVote:
    """One label among the top-k results."""

    label: str
    count: int
    fraction: float


def class_quality(run_dir: str | Path) -> list[ClassQuality]:
    """Per-class P@5, mAP and mAP@R of the run's evaluation, by label.

    Returns:
        One row per class with scored queries; [] when the run has no evaluation.
    """
    evaluation = load_evaluation(run_dir)
    rows = []
    for label, m in sorted((evaluation.scores.per_class if evaluation else {}).items()):
        rows.append(ClassQuality(str(label), float(m.get("precision_at_5", float("nan"))),
                                 float(m.get("map", float("nan"))),
                                 float(m.get("map_at_r", float("nan"))), int(m.get("n_queries", 0))))
    return rows


def _duplicates(run_dir: str | Path) -> DuplicateResult | None:
    try:
        return load_result(run_dir)
    except RunError:  # a damaged file counts as no search here; the Duplicates page says why
        return None


def duplicate_group_of(run_dir: str | Path) -> dict[str, int]:
    """Group number (1 = largest) of each image in a flagged duplicate group of the run.

    Returns:
        {relative path: group}; {} when no duplicate search was made or none was found.
    """
    result = _duplicates(run_dir)
    groups = result.groups if result is not None else []
    return {str(path): g for g, members in enumerate(groups, 1) for path in members}


def label_vote(hits: Sequence[Hit]) -> list[LabelVote]:
    """Labels of the results by count; ties go to the label of the better-ranked result.

    Returns:
        Votes, most frequent first; [] for no results.
    """
    if not hits:
        return []
    counts = Counter(h.label for h in hits)
    first = {}
    for h in sorted(hits, key=lambda h: h.rank):
        first.setdefault(h.label, h.rank)
    order = sorted(counts, key=lambda label: (-counts[label], first[label]))
    return [LabelVote(label, counts[label], counts[label] / len(hits)) for label in order]


def hits_csv(hits: Sequence[Hit], query: str, key: bytes) -> bytes:
    """The results as CSV: query, rank, path, label, split, patient, cosine (UTF-8).

    `patient` is the keyed name of the patient (`display_patient` with the workspace's `key`,
    "" unknown), never the id itself: a download leaves the workspace.
    """
    return csv_bytes(["query", "rank", "path", "label", "split", "patient", "cosine"],
                     [(query, h.rank, h.path, h.label, h.split, display_patient(h.patient_id, key),
                       f"{h.score:.6f}") for h in hits])


def selection_csv(emb: Embeddings, rows: Sequence[int], key: bytes) -> bytes:
    """Selected images of a run as CSV: path, label, split, patient (UTF-8; the patient's
    keyed name, `display_patient` with the workspace's `key`, never the id)."""
    return csv_bytes(["path", "label", "split", "patient"],
                     [(emb.paths[r], emb.labels[r], emb.splits[r], display_patient(emb.patients[r], key))
                      for r in rows])


def label_summary(emb: Embeddings, rows: Sequence[int]) -> list[LabelVote]:
    """Labels among the selected rows, most frequent first (ties by label), with their share."""
    return value_summary(emb.labels, rows)


def value_summary(values: Sequence[str], rows: Sequence[int]) -> list[LabelVote]:
    """Values (one per film: labels, or a Map colouring) among the selected rows, most frequent
    first (ties by value), with their share."""
    counts = Counter(values[r] for r in rows)
    total = max(sum(counts.values()), 1)
    return [LabelVote(label, n, n / total) for label, n in sorted(counts.items(), key=lambda x: (-x[1], x[0]))]
