"""A run's films: the dataset it was trained on plus every film added to it since.

`add` brings films into a run after training. They are listed in the run's `added.csv` (one
row a film: its items.csv path, when it was added, whether its duplicate check reached the
review queue), written *before* the films are indexed, so a kill at any point leaves a record
that `embed`, `train` (resume or continue) and the next `add` read back:
- re-embedding a run (`embed_run`) embeds the dataset *and* the added films, so no stage drops
  them;
- an added film that is indexed but whose check never reached `duplicates.json` (a kill
  between the generation switch and the queue write) is checked again by the next `add`.

Paths are those of items.csv: relative to the dataset root when the film lies under it,
else absolute (`Dataset.absolute` joins `root / path`, which keeps an absolute path).
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, replace

from core.data.dataset import Dataset, Sample
from core.files import atomic_write_csv
from core.run_folder import RunError, RunPaths

_FIELDS = ("path", "added", "checked")


@dataclass(frozen=True)
class AddedFilm:
    """One film added after training.

    path: as in items.csv. added: UNIX time it was recorded. checked: its duplicate check
    reached the review queue (duplicates.json).
    """

    path: str
    added: float
    checked: bool = False


def read_added(paths: RunPaths) -> list[AddedFilm]:
    """The run's added films, in the order they were added ([] when none were).

    Raises:
        RunError: added.csv cannot be read or is not one (one line naming it).
    """
    try:
        with paths.added.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        films = [AddedFilm(str(r["path"]), float(r["added"]), r["checked"] == "1") for r in rows]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError, csv.Error) as e:
        raise RunError(f"{paths.added} is damaged ({type(e).__name__}); it lists the films added "
                       "to the run: restore it, or delete it to keep only the dataset's") from None
    if any(not f.path for f in films):
        raise RunError(f"{paths.added} is damaged (a row without a path); restore it, or delete "
                       "it to keep only the dataset's films")
    return films


def write_added(paths: RunPaths, films: list[AddedFilm]) -> None:
    """Replace added.csv atomically (the caller holds the run's lock)."""
    atomic_write_csv(paths.added, _FIELDS,
                     [(f.path, repr(f.added), "1" if f.checked else "0") for f in films])


def record_added(paths: RunPaths, new: list[str]) -> list[AddedFilm]:
    """Append films to the record, unchecked (those listed already keep their row).

    Returns:
        The whole record after the write.
    """
    films = read_added(paths)
    listed = {f.path for f in films}
    now = time.time()
    films += [AddedFilm(p, now) for p in dict.fromkeys(new) if p not in listed]
    write_added(paths, films)
    return films


def mark_checked(paths: RunPaths, checked: set[str]) -> None:
    """Mark films whose duplicate check reached the review queue."""
    films = read_added(paths)
    if any(f.path in checked and not f.checked for f in films):
        write_added(paths, [replace(f, checked=True) if f.path in checked else f for f in films])


def run_films(dataset: Dataset, splits: list[str], added: list[AddedFilm]) -> tuple[Dataset, list[str]]:
    """The run's films as one dataset: the dataset's samples, then the added films not in it.

    Added films have no label, no split (they were not trained on) and no patient.

    Args:
        dataset: the run's dataset; splits: one split per sample.
        added: the run's added films (`read_added`).

    Returns:
        (dataset with the added films last, their splits).
    """
    known = {s.path for s in dataset.samples}
    extra = [Sample(f.path, "") for f in added if f.path not in known]
    if not extra:
        return dataset, list(splits)
    return (Dataset(dataset.root, dataset.samples + tuple(extra), dataset.skipped, dataset.layout),
            list(splits) + [""] * len(extra))

