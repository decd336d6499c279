"""The Duplicates page's downloads, assembled: verdicts, history, groups and the keep list."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.duplicates.candidates import CandidatePair
from core.review.export import (
    SAME_FILM_KINDS,
    groups_rows,
    image_facts,
    keep_one_per_group,
    keep_rows,
    review_groups,
    to_csv,
    to_json,
    verdict_rows,
)
from core.review.store import Verdict


@dataclass(frozen=True)
class Download:
    """One file to offer: button label, bytes, file name and MIME type."""

    label: str
    data: bytes
    file_name: str
    mime: str


@dataclass(frozen=True)
class ReviewDownloads:
    """Every download of a review, and how many groups it holds."""

    verdicts: list[Download] = field(default_factory=list)
    groups: list[Download] = field(default_factory=list)
    n_groups: int = 0


def review_downloads(flagged: Sequence[CandidatePair], current: Mapping[tuple[str, str], Verdict],
                     history: Iterable[Verdict], data_root: str | Path,
                     include_pending: bool = True, roots: tuple[Path, ...] = ()) -> ReviewDownloads:
    """Verdicts (CSV, JSON), the full history (CSV), groups (CSV, JSON) and keep-one-per-group.

    Args:
        flagged: the search's flagged pairs.
        current: current verdicts; history: every verdict row.
        data_root: the dataset (image sizes and formats decide which copy to keep).
        include_pending: count flagged pairs nobody has rejected yet as duplicates.
        roots: the allowed roots a film added from outside the dataset may lie in.
    """
    rows = verdict_rows(current.values())
    verdicts = [Download("Verdicts (CSV)", to_csv(rows), "verdicts.csv", "text/csv"),
                Download("Verdicts (JSON)", to_json(rows), "verdicts.json", "application/json"),
                Download("Full history (CSV)", to_csv(verdict_rows(history)), "history.csv", "text/csv")]
    pairs = [(p.a, p.b) for p in flagged]
    groups = review_groups(pairs, current, include_pending=include_pending)
    copies = review_groups(pairs, current, include_pending=include_pending, kinds=SAME_FILM_KINDS)
    facts = image_facts(data_root, {m for g in copies for m in g.members}, roots)
    files = [Download("Groups (CSV)", to_csv(groups_rows(groups)), "groups.csv", "text/csv"),
             Download("Groups (JSON)", to_json([vars(g) for g in groups]), "groups.json", "application/json"),
             Download("Keep one per group (CSV)", to_csv(keep_rows(keep_one_per_group(copies, facts))),
                      "keep_one_per_group.csv", "text/csv")]
    return ReviewDownloads(verdicts, files, len(groups))
