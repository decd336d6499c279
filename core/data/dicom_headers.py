"""DICOM headers as metadata: read once per file (Pixel Data never read), cached by path+mtime+size.

A hospital archive carries what a listing needs in its headers: `PatientID` (the patient where
no manifest gives one), `StudyDate`, `ViewPosition`, `Modality`, `SeriesInstanceUID` and
`SOPInstanceUID` (one instance exported twice is one image). `read_headers` reads only those
tags (`stop_before_pixels`, `specific_tags`) and keeps them in a CSV cache that the caller
places (a run folder, never the archive, which may be read-only), so a 100k-file tree is parsed
once. A file whose header cannot be read gets an empty header: the image reader names why
when it decodes it.

Views: a film is left out by default (`--views all` keeps it) when its `ViewPosition` is a
lateral (NON_FRONTAL_VIEWS) or its `Modality` is not a plain radiograph (RADIOGRAPH_MODALITIES:
CR, DX, DR, RG, and OT because digitised films are often exported as "other"). A missing
view or modality is kept: PNG/JPEG films and sparse exports have none.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

from core.data.imageio import DICOM_SUFFIXES
from core.files import atomic_write_csv

# The tags kept, in cache-column order (SOPClassUID/Rows only tell a header from noise).
TAGS = ("PatientID", "StudyDate", "ViewPosition", "Modality", "SeriesInstanceUID", "SOPInstanceUID")
_READ = (*TAGS, "SOPClassUID", "Rows")
NON_FRONTAL_VIEWS = frozenset({"LL", "RL", "LAT", "LATERAL", "LLD", "RLD", "LLO", "RLO",
                               "LATERAL LEFT", "LATERAL RIGHT", "XTABLE LATERAL"})
RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "DR", "RG", "OT"})
CACHE_HEADER = ("path", "mtime_ns", "size", *TAGS)


@dataclass(frozen=True)
class DicomHeader:
    """The kept tags of one file ("" where absent)."""

    patient_id: str = ""
    study_date: str = ""
    view: str = ""
    modality: str = ""
    series_uid: str = ""
    sop_uid: str = ""


def view_reason(header: DicomHeader | None) -> str | None:
    """Why a film is left out under `--views frontal` (None: keep it)."""
    if header is None:
        return None
    view = header.view.strip().upper()
    if view in NON_FRONTAL_VIEWS:
        return f"lateral view (ViewPosition {header.view})"
    modality = header.modality.strip().upper()
    if modality and modality not in RADIOGRAPH_MODALITIES:
        return f"not a radiograph (Modality {header.modality})"
    return None


def is_dicom_name(path: str) -> bool:
    return path.lower().endswith(DICOM_SUFFIXES)


def read_header(path: Path) -> DicomHeader:
    """The kept tags of one DICOM file, read without its pixels (empty when unreadable)."""
    import pydicom  # here: `import core` stays light

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(_READ), force=True)
        if not any(k in ds for k in _READ):
            return DicomHeader()
        values = [ds.get(k) for k in TAGS]
    except Exception:  # pydicom raises many types on malformed input; the reader names it
        return DicomHeader()
    return DicomHeader(*("" if v is None else str(v).strip() for v in values))


def read_headers(root: Path, paths: Iterable[str], cache: Path | None = None) -> dict[str, DicomHeader]:
    """The headers of the DICOM files among `paths` (relative to `root`), keyed by path.

    Args:
        root: the resolved dataset folder.
        paths: relative POSIX paths; non-DICOM names are left out of the result.
        cache: a CSV to reuse and rewrite (keyed by absolute path, mtime and size; entries of
            other folders are kept). None: no cache, every header is read.
    """
    wanted = [p for p in paths if is_dicom_name(p)]
    if not wanted:
        return {}
    old = _read_cache(cache) if cache is not None else {}
    out: dict[str, DicomHeader] = {}
    rows: dict[str, tuple[int, int, DicomHeader]] = {}
    changed = False
    for rel in wanted:
        full = root / rel
        try:
            st = full.stat()
        except OSError:
            continue
        key = str(full)
        hit = old.get(key)
        if hit is not None and hit[0] == st.st_mtime_ns and hit[1] == st.st_size:
            header = hit[2]
        else:
            header, changed = read_header(full), True
        out[rel] = header
        rows[key] = (st.st_mtime_ns, st.st_size, header)
    if cache is not None and (changed or len(rows) != sum(1 for k in old if _under(k, root))):
        _write_cache(cache, root, old, rows)
    return out


def _under(key: str, root: Path) -> bool:
    return key.startswith(str(root) + os.sep)


def _read_cache(cache: Path) -> dict[str, tuple[int, int, DicomHeader]]:
    """The cache's entries; a missing or damaged cache is empty (it is rebuilt)."""
    try:
        with cache.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != CACHE_HEADER:
                return {}
            return {r["path"]: (int(r["mtime_ns"]), int(r["size"]),
                                DicomHeader(*(r[t] or "" for t in TAGS))) for r in reader}
    except (OSError, ValueError, KeyError, TypeError, csv.Error):
        return {}


def _write_cache(cache: Path, root: Path, old: dict, rows: dict) -> None:
    """Rewrite the cache: this folder's entries replaced, other folders' kept."""
    keep = {k: v for k, v in old.items() if not _under(k, root)} | rows
    names = [f.name for f in fields(DicomHeader)]
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_csv(cache, CACHE_HEADER, [
            (k, m, s, *(getattr(h, n) for n in names)) for k, (m, s, h) in sorted(keep.items())])
    except OSError:  # a cache that cannot be written only costs a re-read next time
        pass
