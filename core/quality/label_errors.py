"""Likely label errors: films whose nearest films in the embedding mostly carry another label.

Each labelled film gets out-of-sample label probabilities from its k nearest other labelled
films (the share of them carrying each label; the film's own label never votes for itself),
and cleanlab's `find_label_issues` (confident learning, Northcutt et al. 2021, JAIR 70) picks
and ranks the films whose given label those probabilities do not support. cleanlab is a
maintained, tested implementation of the method, so it is used rather than our own.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from core.quality.findings import Finding, FindingList
from core.quality.neighbours import nearest_neighbours

K = 10
TITLE = "Likely label errors"
MEANING = ("The film's nearest films mostly carry another label (confident learning on "
           "k-NN label shares, cleanlab)")


def knn_label_probabilities(neighbours: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Each row's share of neighbours in each class.

    Args:
        neighbours: (N, k) row indices of each row's nearest other rows.
        classes: (N,) class index of every row, 0..n_classes-1.
        n_classes: number of classes.

    Returns:
        (N, n_classes) float64, rows summing to 1 (uniform for a row without neighbours).
    """
    n, k = neighbours.shape
    if k == 0:
        return np.full((n, n_classes), 1.0 / max(n_classes, 1))
    votes = classes[neighbours]  # (N, k)
    probs = np.zeros((n, n_classes))
    np.add.at(probs, (np.repeat(np.arange(n), k), votes.ravel()), 1.0)
    return probs / k


def why_no_label_list(labels: Sequence[str]) -> str:
    """One line saying why a run's labels cannot give a label-error list; '' when they can."""
    named = {label for label in labels if label}
    if not named:
        return "The run has no labels, so there is no label to disagree with."
    if len(named) < 2:
        return "The run has one label only, so no film's neighbours can carry another."
    return ""


def find_label_errors(paths: Sequence[str], labels: Sequence[str], vectors: np.ndarray,
                      k: int = K, limit: int | None = None) -> FindingList:
    """Labelled films that cleanlab finds mislabelled given their neighbours' labels, worst first.

    Args:
        paths, labels: the run's films ("" label: unlabelled, left out).
        vectors: (N, D) unit embedding rows.
        k: neighbours that vote.
        limit: keep at most this many (None: all).
    """
    skipped = why_no_label_list(labels)
    if skipped:
        return FindingList("label_errors", TITLE, MEANING, skipped=skipped)
    rows = np.array([i for i, label in enumerate(labels) if label], dtype=np.int64)
    names = sorted({labels[r] for r in rows})
    classes = np.array([names.index(labels[r]) for r in rows], dtype=np.int64)
    neighbours, _ = nearest_neighbours(np.asarray(vectors)[rows], k)
    probs = knn_label_probabilities(neighbours, classes, len(names))
    ranked = _cleanlab_issues(classes, probs)
    k_used = neighbours.shape[1]
    findings = []
    for i in ranked[:limit]:
        share = probs[i].copy()
        own = share[classes[i]]
        share[classes[i]] = -1.0
        other = int(np.argmax(share))
        findings.append(Finding(
            paths[rows[i]], labels[rows[i]], round(float(own), 4),
            f"{round(probs[i, other] * k_used)} of {k_used} nearest are {names[other]}; "
            f"{round(own * k_used)} {names[classes[i]]}", "own-label share"))
    return FindingList("label_errors", TITLE, MEANING, tuple(findings))


def _cleanlab_issues(classes: np.ndarray, probs: np.ndarray) -> list[int]:
    """Row positions cleanlab flags, most likely mislabelled first (self-confidence)."""
    from cleanlab.filter import find_label_issues  # imported here: 1.5 s, only when asked

    with warnings.catch_warnings():  # small classes make cleanlab warn; the list says enough
        warnings.simplefilter("ignore")
        # n_jobs=1: cleanlab's default forks a process pool, which hung when forked from the
        # app's server (threads, torch loaded); one process prunes 5,000 films in well under a second
        ranked = find_label_issues(classes, probs, return_indices_ranked_by="self_confidence", n_jobs=1)
    return [int(i) for i in ranked]
