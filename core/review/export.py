"""Exports for cleaning a dataset: verdicts, duplicate groups, and which file of each group to keep.

Groups are connected components of pairs that are confirmed duplicates or, optionally,
flagged candidates nobody has rejected yet. The keep list uses copy kinds only: two studies
of one patient ('same_patient') are not copies, and both are kept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

from core.data.access import dataset_file
from core.data.imageio import PIL_FORMATS, ImageReadError, load_image
from core.duplicates.neighbours import connected_groups
from core.duplicates.proof import SAME_FILM_KINDS  # noqa: F401  (the page's export filter)
from core.files import csv_bytes
from core.review.store import Verdict

KEEP_RULE = ("keep the highest resolution (width x height), then the largest file, "
             "then the shortest path, then the first in alphabetical order")


@dataclass(frozen=True)
class ReviewGroup:
    """Images linked by duplicate pairs; `confirmed`/`pending` count the links of each sort."""

    group: int  # 1-based
    members: list[str]
    confirmed: int
    pending: int


@dataclass(frozen=True)
class ImageFacts:
    """What the keep rule looks at: pixel size and file size (0 when unreadable)."""

    path: str
    width: int
    height: int
    bytes: int


@dataclass(frozen=True)
class KeepChoice:
    """The file to keep in one group and the ones to drop."""

    group: int
    keep: str
    drop: list[str]
    rule: str = KEEP_RULE


def review_groups(candidates: Iterable[tuple[str, str]], current: Mapping[tuple[str, str], Verdict],
                  include_pending: bool = True, kinds: Iterable[str] | None = None) -> list[ReviewGroup]:
    """Group images by confirmed duplicates and (optionally) unrejected candidates.

    Args:
        candidates: flagged pairs (a, b), in either order.
        current: the current verdict per pair key (`ReviewStore.current()`).
        include_pending: also link candidates with no verdict, or 'skip'.
        kinds: duplicate kinds that link images (None: every kind).

    Returns:
        Groups largest first, members sorted.
    """
    allowed = None if kinds is None else set(kinds)
    confirmed = {key for key, v in current.items()
                 if v.verdict == "duplicate" and (allowed is None or v.kind in allowed)}
    pending = set()
    if include_pending:
        for a, b in candidates:
            key = (a, b) if a < b else (b, a)
            v = current.get(key)
            if v is None or v.verdict == "skip":
                pending.add(key)
    edges = confirmed | pending
    names = sorted({p for key in edges for p in key})
    row = {p: i for i, p in enumerate(names)}
    groups = connected_groups(len(names), [(row[a], row[b]) for a, b in sorted(edges)])
    out = []
    for g, ids in enumerate(groups, 1):
        members = sorted(names[i] for i in ids)
        inside = set(members)
        out.append(ReviewGroup(g, members, sum(a in inside for a, _ in confirmed),
                               sum(a in inside for a, _ in pending)))
    return out


def image_facts(root: str | Path, paths: Iterable[str], roots: tuple[Path, ...] = ()) -> dict[str, ImageFacts]:
    """Pixel and file size of each image (header only where Pillow can; DICOM decoded).

    Files are opened through `core.data.dataset_file`: one outside the dataset folder and the
    allowed `roots` counts as unreadable (all zeros), as a missing one does.
    """
    out = {}
    for path in paths:
        try:
            file = dataset_file(root, path, roots)
            size = file.stat().st_size
        except (OSError, ImageReadError):
            out[path] = ImageFacts(path, 0, 0, 0)
            continue
        try:
            with Image.open(file, formats=PIL_FORMATS) as im:
                w, h = im.size
        except Exception:  # not a Pillow format (DICOM) or unreadable: decode it our way
            try:
                h, w = load_image(file).pixels.shape
            except ImageReadError:
                w = h = 0
        out[path] = ImageFacts(path, int(w), int(h), int(size))
    return out


def keep_one_per_group(groups: Iterable[ReviewGroup], facts: Mapping[str, ImageFacts]) -> list[KeepChoice]:
    """Choose the file to keep in each group by KEEP_RULE.

    Args:
        groups: from `review_groups`.
        facts: sizes of every member (`image_facts`).

    Returns:
        One KeepChoice per group.
    """
    def rank(path: str) -> tuple:
        f = facts.get(path, ImageFacts(path, 0, 0, 0))
        return (-f.width * f.height, -f.bytes, len(path), path)

    out = []
    for g in groups:
        ordered = sorted(g.members, key=rank)
        out.append(KeepChoice(g.group, ordered[0], ordered[1:]))
    return out


def verdict_rows(verdicts: Iterable[Verdict]) -> list[dict]:
    """Verdicts as flat rows with an ISO time, for CSV or JSON."""
    rows = []
    for v in verdicts:
        row = asdict(v)
        row["time"] = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(v.created))
        rows.append(row)
    return rows


def to_csv(rows: list[dict], fields: list[str] | None = None) -> bytes:
    """Rows as UTF-8 CSV bytes (columns: `fields`, else the first row's keys)."""
    return csv_bytes(fields or (list(rows[0]) if rows else []), rows)


def to_json(obj: object) -> bytes:
    """Pretty JSON bytes."""
    return (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode("utf-8")


def groups_rows(groups: Iterable[ReviewGroup]) -> list[dict]:
    """One row per (group, member)."""
    return [{"group": g.group, "path": p, "size": len(g.members), "confirmed_links": g.confirmed,
             "pending_links": g.pending} for g in groups for p in g.members]


def keep_rows(choices: Iterable[KeepChoice]) -> list[dict]:
    """One row per file in a group: keep or drop, with the rule."""
    return [{"group": c.group, "path": p, "action": "keep" if p == c.keep else "drop", "rule": c.rule}
            for c in choices for p in [c.keep, *c.drop]]
