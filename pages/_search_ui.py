"""Widgets of the Search page (the page itself is pages/search.py), and how a query is read.

Display windows and the tags allowed on screen are core.data's (display.py); `read_query`
decodes a query and judges its pixels (core.data.plausibility), tested without a browser.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import streamlit as st

from core.data import (
    CT_PRESETS,
    FILE_DEFAULT,
    ImageReadError,
    LoadedImage,
    PixelCheck,
    Window,
    dataset_file,
    key_tags,
    load_image,
    radiograph_check,
    window_presets,
    windowed_pixels,
)
from core.data.image_cache import IMAGE_CACHE
from core.embed import Embeddings
from core.retrieval import SamePatientPrior
from pages._images_ui import escape_markdown

CUSTOM = "Custom"


@dataclass(frozen=True, eq=False)
class QueryImage:
    """A decoded query: its name, image, a digest of its bytes (keys its widgets), what its
    pixels say (colour, shape, grey range), and its dataset path and patient id when picked
    from the dataset."""

    name: str
    image: LoadedImage
    digest: str
    check: PixelCheck
    dataset_path: str | None = None
    patient_id: str = ""  # a dataset image's patient ("" for uploads and unknown ids)


@dataclass(frozen=True)
class QueryError:
    """Why a query could not be read: the one-line ImageReadError message."""

    message: str


def _file_size(meta: dict[str, str]) -> tuple[int, int] | None:
    """The file's own (width, height) from `load_image`'s meta['size'] ('WxH'), if given."""
    try:
        w, h = (int(v) for v in meta["size"].split("x"))
    except (KeyError, ValueError):
        return None
    return w, h


def read_query(data: bytes, name: str) -> QueryImage | QueryError:
    """Decode an uploaded file; a bad file gives its one-line reason, never an exception.

    Args:
        data: the file's bytes.
        name: its file name (for format hints and the message).
    """
    try:
        image = load_image(data, name=name)
    except ImageReadError as e:
        return QueryError(str(e))
    check = radiograph_check(image.pixels, data if image.raw is None else None,
                             size=_file_size(image.meta))
    return QueryImage(name, image, hashlib.sha1(data).hexdigest()[:16], check)


def read_dataset_query(data_root: Path, rel_path: str, roots: tuple[Path, ...] = ()) -> QueryImage | QueryError:
    """Decode a film of the run as a query (`roots`: the allowed roots an added film may lie in)."""
    try:
        path = dataset_file(data_root, rel_path, roots)
        data = path.read_bytes()
    except ImageReadError as e:
        return QueryError(str(e))
    except OSError as e:
        return QueryError(f"{rel_path}: cannot open file ({e.strerror or e})")
    query = read_query(data, rel_path)
    return replace(query, dataset_path=rel_path) if isinstance(query, QueryImage) else query


# ---- widgets --------------------------------------------------------------------------------

@IMAGE_CACHE.memoize(busy=lambda: st.spinner("Reading the image…"))  # bounded in bytes
def _read_upload(data: bytes, name: str) -> QueryImage | QueryError:
    return read_query(data, name)


@IMAGE_CACHE.memoize  # bounded in bytes, shared with uploads and the Duplicates page
def _read_dataset(data_root: str, rel_path: str, stamp: float, roots: tuple[Path, ...]) -> QueryImage | QueryError:
    return read_dataset_query(Path(data_root), rel_path, roots)


def query_source_ui(emb: Embeddings, data_root: Path, roots: tuple[Path, ...] = ()
                    ) -> QueryImage | QueryError | None:
    """Upload a file or pick one of the run's films; returns the decoded query (None: nothing
    yet). `roots`: the allowed roots a film added from outside the dataset may lie in."""
    source = st.radio("Query", ("Upload an image", "Pick from the dataset"), horizontal=True,
                      key="search_source")
    if source == "Upload an image":
        upload = st.file_uploader("PNG, JPEG or DICOM", key="search_upload",
                                  help="Any size up to the upload limit; DICOM files may have no extension.")
        if upload is None:
            return None
        return _read_upload(upload.getvalue(), upload.name)
    labels = sorted({lab for lab in emb.labels if lab})
    c1, c2 = st.columns([1, 3])
    if labels:  # an unlabelled run has no class to pick from
        label = c1.selectbox("Class", ["(all)", *labels], key="search_pick_label")
    else:
        label = "(all)"
    paths = [p for p, lab in zip(emb.paths, emb.labels, strict=True) if label in ("(all)", lab)]
    rel = c2.selectbox("Image", paths, key="search_pick_path")
    if rel is None:
        return None
    try:
        stamp = (data_root / rel).stat().st_mtime
    except OSError:
        stamp = 0.0
    query = _read_dataset(str(data_root), rel, stamp, roots)
    if isinstance(query, QueryImage):
        query = replace(query, patient_id=emb.patients[emb.paths.index(rel)] or "")
    return query


def window_ui(query: QueryImage) -> tuple[np.ndarray, Window | None]:
    """DICOM window/level: a preset and centre/width sliders (moving one makes it 'Custom').

    Returns:
        ((H, W) pixels to show and search, the window used or None for the file's own).
    """
    image = query.image
    presets = window_presets(image)
    if not presets:
        return image.pixels, None
    raw = image.raw
    with warnings.catch_warnings():  # all-NaN pixels: nanmin says so with a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = float(np.nanmin(raw)), float(np.nanmax(raw))
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):  # a slider needs a finite range
        level = f"every pixel is {lo:g}" if np.isfinite(lo) and lo == hi else "its pixels have no finite range"
        st.caption(escape_markdown(f"{query.name}: {level}, so there is no window to set; "
                                   "it is shown and searched as it is."))
        return image.pixels, None
    span = max(hi - lo, 1.0)
    w_min, w_max = span / 1000, 2 * span
    key = f"search_wl_{query.digest}"
    start = image.window or presets["Full range"]

    def clamp(w: Window) -> tuple[float, float]:
        return float(np.clip(w.center, lo, hi)), float(np.clip(w.width, w_min, w_max))

    def on_preset() -> None:
        chosen = presets.get(st.session_state[f"{key}_preset"])
        if st.session_state[f"{key}_preset"] != CUSTOM:
            c, w = clamp(chosen or start)
            st.session_state[f"{key}_c"], st.session_state[f"{key}_w"] = c, w

    def on_slider() -> None:
        st.session_state[f"{key}_preset"] = CUSTOM

    if f"{key}_c" not in st.session_state:
        st.session_state[f"{key}_c"], st.session_state[f"{key}_w"] = clamp(start)
    preset = st.selectbox("Window preset", [*presets, CUSTOM], key=f"{key}_preset", on_change=on_preset)
    center = st.slider("Window centre (level)", lo, hi, step=span / 500, key=f"{key}_c",
                       on_change=on_slider)
    width = st.slider("Window width", w_min, w_max, step=span / 500, key=f"{key}_w", on_change=on_slider)
    window = presets[preset] if preset != CUSTOM else Window(center, width)
    if preset == FILE_DEFAULT:
        window = None
    if set(CT_PRESETS) & set(presets):  # CT only: the note means nothing on a CR or DX film
        st.caption("Lung, bone and soft-tissue presets are in Hounsfield units; the search uses the "
                   "image as displayed.")
    else:
        st.caption("The search uses the image as displayed.")
    return windowed_pixels(image, window), window


def tags_ui(meta: dict[str, str]) -> None:
    """Key DICOM tags that are present, as plain text."""
    tags = key_tags(meta)
    if tags:
        st.text("\n".join(f"{name}: {value}" for name, value in tags))


def hide_patient_ui(query: QueryImage) -> str | None:
    """A switch that leaves the query's own patient's films out of the results.

    Returns:
        The patient id to hide, or None (switch off, or the query's patient is unknown).
    """
    known = bool(query.patient_id)
    hide = st.toggle("Hide same patient", key="search_hide_patient", disabled=not known,
                     help=("Leave the query patient's other films out: similar cases in other "
                           "patients only.") if known else
                          "The query's patient is known only for a dataset image whose dataset "
                          "gives patient ids.")
    return query.patient_id if hide and known else None


def priors_ui() -> bool:
    """A switch that ranks the nearest films by the landmarks they share with the query."""
    return st.toggle("Same patient first", key="search_priors",
                     help="Re-rank the 30 nearest films by shared anatomical landmarks (ribs, "
                          "clavicles, devices at positions one transform relates): priors and "
                          "follow-ups of the query's patient come first, even under another id. "
                          "Takes about a second.")


# a hint threshold this high means the embedding is confident only of copies, not of a patient
NEAR_IDENTICAL = 0.999


def patients_caption_text(prior: SamePatientPrior, hidden: str | None) -> str:
    """What the patient lines of the results mean: the hidden patient (`hidden`: its keyed
    name, core.data.patient_ids.display_patient, never the id), where the hint comes from."""
    parts = []
    if hidden:
        parts.append(f"Films of the query's patient ({hidden}) hidden.")
    if prior.threshold is not None:
        parts.append(f"same patient? N%: the model's guess that a film is the query's patient, "
                     f"shown from cosine {prior.threshold:.3f}, where at least {prior.target:.0%} of "
                     f"{prior.n_pairs} held-out neighbour pairs of this run were one patient's films.")
        if prior.threshold >= NEAR_IDENTICAL:
            parts.append("This model is that sure only of near-identical films; 'Same patient first' "
                         "finds a patient's other films by the landmarks they share.")
    return " ".join(parts)
