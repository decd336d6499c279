"""How a decoded image is shown: DICOM display windows and the tags allowed on screen.

Hounsfield-unit windows mean something for CT only. Radiograph (CR/DX) values have no fixed
scale, so radiographs get the file's own window, the full range and an automatic one instead.
Only tags that identify no one (modality, view, study date) are ever shown.
"""

from __future__ import annotations

import numpy as np

from core.data.imageio import LoadedImage, Window, apply_window

CT_PRESETS = {"Lung (−600 / 1500 HU)": Window(-600.0, 1500.0),
              "Bone (300 / 1500 HU)": Window(300.0, 1500.0),
              "Soft tissue (40 / 400 HU)": Window(40.0, 400.0)}
FILE_DEFAULT = "File default"
SHOWN_TAGS = (("Modality", "Modality"), ("ViewPosition", "View"), ("StudyDate", "Study date"))


def window_presets(image: LoadedImage) -> dict[str, Window | None]:
    """Window presets for a DICOM image (None: the file's own display, VOI LUT included).

    Returns:
        {name: window}; empty for images without modality values (PNG, JPEG, ...).
    """
    if image.raw is None:
        return {}
    raw = image.raw
    lo, hi = float(np.min(raw)), float(np.max(raw))
    p1, p99 = (float(v) for v in np.percentile(raw, [1, 99]))
    presets: dict[str, Window | None] = {
        FILE_DEFAULT: None,
        "Full range": Window((lo + hi) / 2, max(hi - lo, 1.0)),
        "Auto (1st–99th percentile)": Window((p1 + p99) / 2, max(p99 - p1, 1.0)),
    }
    if image.meta.get("Modality", "").upper() == "CT":
        presets.update(CT_PRESETS)
    return presets


def default_window(image: LoadedImage) -> Window | None:
    """The window a DICOM image opens with: its own, else the full range (None: not DICOM)."""
    if image.raw is None:
        return None
    return image.window or Window(float(np.median(image.raw)), float(np.ptp(image.raw)) or 1.0)


def windowed_pixels(image: LoadedImage, window: Window | None) -> np.ndarray:
    """The image as displayed and searched: the file's own pixels, or `raw` through `window`.

    Returns:
        (H, W) float32 in [0, 1]; MONOCHROME1 stays inverted (bone bright).
    """
    if window is None or image.raw is None:
        return image.pixels
    invert = image.meta.get("PhotometricInterpretation", "").upper() == "MONOCHROME1"
    return apply_window(image.raw, window, invert=invert)


def key_tags(meta: dict[str, str]) -> list[tuple[str, str]]:
    """Modality, view and study date when present; never patient identifiers.

    Returns:
        [(display name, value)], StudyDate as YYYY-MM-DD.
    """
    out = []
    for tag, shown in SHOWN_TAGS:
        value = str(meta.get(tag, "")).strip()
        if not value:
            continue
        if tag == "StudyDate" and len(value) == 8 and value.isdigit():
            value = f"{value[:4]}-{value[4:6]}-{value[6:]}"
        out.append((shown, value))
    return out
