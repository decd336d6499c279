"""What a dataset holds, as plain data for Home and the Map: films, labels, patients, views,
study years, folders, and the files left out with their reasons.

A labelled folder is described by its classes; an unlabelled archive by what its files and
DICOM headers say. Patients are counted here and shown only through
`core.data.patient_ids.display_patient`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.data.dataset import Dataset
from core.data.dicom_headers import DicomHeader, read_headers
from core.data.patient_ids import display_patients

NONE = "(none)"  # a film without the value (no header, no folder, no patient)
OTHER = "(other)"  # values past the most frequent ones
MAX_VALUES = 20  # legend entries of one colouring before the rest are OTHER
MAX_SKIPPED = 200  # skipped files listed (all are counted)


@dataclass(frozen=True)
class DatasetOverview:
    """A dataset at a glance. Counters are sorted: by label, by view (most films first), by year."""

    name: str
    path: str
    layout: str
    n_images: int
    class_counts: dict[str, int]
    n_patients: int  # distinct patient ids
    n_without_patient: int  # films with no patient id
    views: dict[str, int]  # ViewPosition -> films ("(none)": no view in the header, or no header)
    study_years: dict[str, int]  # year of StudyDate -> films (DICOM films with a date only)
    n_dicom: int
    n_skipped: int
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason), the first MAX_SKIPPED

    @property
    def has_labels(self) -> bool:
        return bool(self.class_counts)

    @property
    def has_patients(self) -> bool:
        return self.n_patients > 0


def study_year(header: DicomHeader | None) -> str:
    """The year of a header's StudyDate (YYYYMMDD), "" when there is none or it is not a date."""
    date = header.study_date.strip() if header is not None else ""
    return date[:4] if len(date) >= 4 and date[:4].isdigit() and 1800 < int(date[:4]) < 2200 else ""


def describe_dataset(dataset: Dataset) -> DatasetOverview:
    """Counts of a listed dataset (no file is read: the headers came with the listing)."""
    samples = dataset.samples
    headers = [s.header for s in samples]
    views = Counter((h.view.strip().upper() or NONE) if h is not None else NONE for h in headers)
    years = Counter(y for y in (study_year(h) for h in headers) if y)
    patients = {s.patient_id for s in samples if s.patient_id}
    return DatasetOverview(
        name=dataset.root.name, path=str(dataset.root), layout=dataset.layout,
        n_images=len(samples), class_counts=dataset.class_counts(),
        n_patients=len(patients), n_without_patient=sum(not s.patient_id for s in samples),
        views=dict(sorted(views.items(), key=lambda kv: (kv[0] == NONE, -kv[1], kv[0]))),
        study_years=dict(sorted(years.items())), n_dicom=sum(h is not None for h in headers),
        n_skipped=len(dataset.skipped),
        skipped=[(s.path, s.reason) for s in dataset.skipped[:MAX_SKIPPED]])


def top_folder(path: str) -> str:
    """The top-level folder of a relative path ("" for a file at the top); for an absolute
    path (a film of a later `--data` folder, or one `add` took from elsewhere) the folder that
    holds it, whole, so films of two folders with the same class names stay apart."""
    if path.startswith("/"):
        return path.rsplit("/", 1)[0] or "/"
    if "/" not in path:
        return ""
    return path.split("/", 1)[0]


def film_colourings(paths: Sequence[str], labels: Sequence[str], patients: Sequence[str],
                    headers: Mapping[str, DicomHeader], key: bytes) -> dict[str, list[str]]:
    """The legend value of every film for each colouring the films have, and no other.

    Args:
        paths, labels, patients: one per film (a run's embeddings; "" where unknown).
        headers: DICOM headers by path (`film_headers`); films without one have no view or year.
        key: the workspace's patient key: patients are shown as `display_patient` names.
        (A folder colouring that only repeats the labels, class folders, is left out.)

    Returns:
        {"label" | "patient" | "view" | "folder" | "study year": one value per film}, only the
        colourings with at least one known value (a folder: two or more top-level folders).
        Unknown values are NONE; past the MAX_VALUES most frequent, values are OTHER.
    """
    out: dict[str, list[str]] = {}
    if any(labels):
        out["label"] = [v or NONE for v in labels]
    if any(patients):
        out["patient"] = _capped(display_patients(patients, key))
    views = [(headers[p].view.strip().upper() if p in headers else "") for p in paths]
    if any(views):
        out["view"] = _capped(views)
    folders = [top_folder(p) for p in paths]
    if len({f for f in folders if f}) >= 2 and list(folders) != list(labels):  # not class folders again
        out["folder"] = _capped(folders)
    years = [study_year(headers.get(p)) for p in paths]
    if any(years):
        out["study year"] = _capped(years)
    return out


def _capped(values: Sequence[str], limit: int = MAX_VALUES) -> list[str]:
    """Values with "" as NONE, and all but the `limit` most frequent known ones as OTHER."""
    counts = Counter(v for v in values if v)
    kept = {v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]}
    return [NONE if not v else v if v in kept else OTHER for v in values]


def film_headers(root: str | Path, paths: Sequence[str], cache: Path | None) -> dict[str, DicomHeader]:
    """The DICOM headers of a run's films (read from `cache`, the run's header cache, where it
    holds them; the others are read once and added to it)."""
    return read_headers(Path(root), paths, cache)
