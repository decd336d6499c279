"""What a quality list holds: films, each with a score and the reason it is listed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One film on a quality list.

    `score` is the list's own measure, named by `score_name` (a k-NN distance, the share of
    neighbours with the film's label, the mean grey...); `reason` one plain line saying what
    was measured against what.
    """

    path: str  # as in the run's items.csv
    label: str
    score: float
    reason: str
    score_name: str = "score"


@dataclass(frozen=True)
class FindingList:
    """One quality list, worst first.

    `skipped` says in one line why the list was not made (e.g. the run has no labels);
    `pending` that it needs the films' image statistics, not measured yet.
    """

    name: str  # outliers | label_errors | exposure | blur | content
    title: str
    meaning: str  # what being on the list means, one sentence
    findings: tuple[Finding, ...] = ()
    skipped: str = ""
    pending: bool = False

    def __len__(self) -> int:
        return len(self.findings)
