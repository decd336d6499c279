"""Test archives the tests make: a nested DICOM hospital tree and a flat folder of PNG/JPEG films.

`dicom_tree(root)` writes `HOSPnnnnn/studyN/seriesN/imgN.dcm` (64x64, 12-bit) with, besides
plain frontal DX/CR films:
- HOSP00000 has three studies (one patient, several studies);
- NOID/study0/series1/img0.dcm has no PatientID;
- HOSP00000/study0/series9/img0.dcm re-exports HOSP00000/study0/series1/img0.dcm: one
  SOPInstanceUID, other pixels (the same instance exported twice);
- HOSP00001/study0/series2/img0.dcm is a lateral (ViewPosition LL);
- HOSP00002/study0/series1/img0.dcm is MONOCHROME1;
- HOSP00003/study0/series2/img0.dcm is a CT slice (Modality CT);
- HOSP00005/study0/series1/img0.dcm is corrupt (random bytes).
`flat_films(root)` writes film00.png ... and film12.jpg ... side by side, no labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

UID_ROOT = "1.2.826.0.1.3680043.10.1029"
SIZE = 64
DUPLICATE_SOP = f"{UID_ROOT}.7.1"


# The special files of `dicom_tree`, by what is special about them (paths relative to root).
SPECIAL = {"lateral": "HOSP00001/study0/series2/img0.dcm", "ct": "HOSP00003/study0/series2/img0.dcm",
           "monochrome1": "HOSP00002/study0/series1/img0.dcm", "no_patient": "NOID/study0/series1/img0.dcm",
           "original": "HOSP00000/study0/series1/img0.dcm", "reexport": "HOSP00000/study0/series9/img0.dcm",
           "corrupt": "HOSP00005/study0/series1/img0.dcm"}


@dataclass(frozen=True)
class DicomTree:
    """A written `dicom_tree`: its root, how many files, and its special files by name
    (`tree.lateral`, `tree.reexport`, ...: the keys of SPECIAL)."""

    root: Path
    n_files: int  # every .dcm written, the corrupt one included

    def __getattr__(self, name: str) -> str:
        try:
            return SPECIAL[name]
        except KeyError:
            raise AttributeError(name) from None


def film(seed: int, size: int = SIZE) -> np.ndarray:
    """A smooth chest-like pattern, different for every seed: (size, size) float in [0, 1]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    img = 0.4 + 0.3 * np.sin(2 * np.pi * (x * rng.uniform(1, 3) + y * rng.uniform(1, 3)))
    img += 0.3 * np.exp(-((x - rng.uniform(0.3, 0.7)) ** 2 + (y - 0.5) ** 2) / 0.05)
    return np.clip(img + rng.normal(0, 0.03, img.shape), 0, 1)


def write_dicom(path: Path, pixels: np.ndarray, *, sop_uid: str, patient_id: str | None = "P",
                study_date: str = "20240102", view: str = "PA", modality: str = "DX",
                series_uid: str = f"{UID_ROOT}.2", photometric: str = "MONOCHROME2") -> Path:
    """Write (H, W) pixels in [0, 1] as a 12-bit DICOM file with the given header."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = sop_uid
    ds.file_meta.ImplementationClassUID = f"{UID_ROOT}.9"
    if patient_id is not None:
        ds.PatientID = patient_id
    ds.StudyDate, ds.ViewPosition, ds.Modality = study_date, view, modality
    ds.SeriesInstanceUID = series_uid
    ds.PhotometricInterpretation, ds.SamplesPerPixel = photometric, 1
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    stored = np.round(np.asarray(pixels) * 4095).astype("<u2")
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def dicom_tree(root: Path) -> DicomTree:
    """Write the nested hospital tree under `root` (see the module docstring)."""
    t = DicomTree(root, 0)
    n = 0

    def put(rel: str, **header) -> None:
        nonlocal n
        n += 1
        header.setdefault("sop_uid", f"{UID_ROOT}.1.{n}")
        write_dicom(root / rel, film(n), **header)

    for p in range(5):
        pid = f"HOSP{p:05d}"
        studies = 3 if p == 0 else 1
        for st in range(studies):
            for i in range(3):
                put(f"{pid}/study{st}/series1/img{i}.dcm", patient_id=pid,
                    study_date=f"202{st}0{i + 1}15", series_uid=f"{UID_ROOT}.2.{p}.{st}",
                    modality="CR" if p % 2 else "DX",
                    photometric="MONOCHROME1" if f"{pid}/study{st}/series1/img{i}.dcm" == t.monochrome1
                    else "MONOCHROME2")
    put(t.lateral, patient_id="HOSP00001", view="LL")
    put(t.ct, patient_id="HOSP00003", modality="CT", view="")
    put(t.no_patient, patient_id=None)
    put("NOID/study0/series1/img1.dcm", patient_id=None)
    # the same instance exported again: its SOP UID, re-windowed pixels
    original = root / t.original
    import pydicom

    sop = pydicom.dcmread(original).SOPInstanceUID
    n += 1
    write_dicom(root / t.reexport, np.clip(film(1) * 0.8 + 0.1, 0, 1), sop_uid=sop,
                patient_id="HOSP00000", study_date="20200115", series_uid=f"{UID_ROOT}.3")
    corrupt = root / t.corrupt
    corrupt.parent.mkdir(parents=True, exist_ok=True)
    corrupt.write_bytes(np.random.default_rng(7).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    n += 1
    return DicomTree(root, n)


def flat_films(root: Path, n_png: int = 12, n_jpeg: int = 6) -> Path:
    """A flat folder of unlabelled films: film00.png ... then JPEGs, 64x64 grayscale."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n_png + n_jpeg):
        img = Image.fromarray(np.round(film(100 + i) * 255).astype(np.uint8))
        if i < n_png:
            img.save(root / f"film{i:02d}.png")
        else:
            img.save(root / f"film{i:02d}.jpg", quality=95)
    return root
