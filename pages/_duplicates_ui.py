"""Widgets of the Duplicates page. File names are user data: they are shown only in tables,
`st.text` or `st.code`, never in Markdown or HTML."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.data import (
    ImageReadError,
    LoadedImage,
    Window,
    dataset_file,
    default_window,
    load_image,
    to_uint8,
    windowed_pixels,
)
from core.data.image_cache import IMAGE_CACHE
from core.data.patient_ids import display_patient
from core.duplicates import DuplicateResult, Interval, copy_estimate, load_result
from core.embed import Embeddings
from core.files import file_stamp
from core.jobs import search_status, start_search
from core.review import KIND_LABELS, KINDS, SORTS, STATUSES, QueueFilter, QueueItem, Verdict
from core.run_folder import RunError, RunPaths
from pages._pair_evidence_ui import found_kinds_ui

STATUS_LABELS = {"pending": "pending", "duplicate": "duplicate", "not_duplicate": "not duplicate",
                 "skip": "skipped", "any": "any status"}
SHORTCUTS = ("Coloured: duplicate, by kind (exact copy, copy: same film transformed, similar: not the "
             "same film, same patient: another film). Keys: 1-4 duplicate (by kind), N not duplicate, "
             "S skip, U undo, ← / → previous / next.")
FILM_HEIGHT = 340  # px: both films and the scores fit a 1280 x 720 screen
NAMED = 5  # pairs a refused bulk verdict names (the rest are counted)


def stale_pair_message(history: Sequence[Verdict], pair: tuple[str, str], still_shown: bool) -> str:
    """Why a verdict on `pair` was refused: who changed the pair meanwhile, and what the page
    shows now (the pair itself, or, when it left the list, the next one).

    Args:
        history: the pair's rows, oldest first (`ReviewStore.history(a, b)`).
        pair: the two paths the reviewer decided on.
        still_shown: whether the page now shows that pair again.
    """
    names = " · ".join(Path(p).name for p in pair)
    now = ("It is shown as it is now." if still_shown
           else "It has left this list of pairs; the page shows the next one.")
    return f"Not saved: {names} changed since you opened it{_changed_by(history)}. {now}"


def stale_pairs_message(changed: Mapping[tuple[str, str], Sequence[Verdict]], total: int) -> str:
    """Why a bulk verdict was refused: which of the `total` pairs it showed changed since, and
    who changed each (one line; the first few are named).

    Args:
        changed: each changed pair's rows, oldest first (`ReviewStore.history(a, b)`).
        total: how many pairs the bulk action showed.
    """
    named = [" · ".join(Path(p).name for p in pair) + _changed_by(history)
             for pair, history in list(changed.items())[:NAMED]]
    more = f"; and {len(changed) - NAMED} more" if len(changed) > NAMED else ""
    return (f"Not saved: {len(changed)} of {total} pairs changed since they were shown: "
            f"{'; '.join(named)}{more}. Nothing was written; the page shows them as they are now.")


def _changed_by(history: Sequence[Verdict]) -> str:
    """' (ann marked it duplicate: copy (...) at 13:07)' for the pair's last row ('' for none)."""
    if not history:
        return ""
    last = history[-1]
    if last.verdict == "undo":
        done = "undid a verdict on it"
    else:
        done = "marked it " + STATUS_LABELS.get(last.verdict, last.verdict)
        if last.kind:
            done += f": {KIND_LABELS.get(last.kind, last.kind)}"
    return f" ({last.reviewer} {done} at {time.strftime('%H:%M', time.localtime(last.created))})"



@st.cache_data(max_entries=8, show_spinner=False)
def _result(run_dir: str, stamp: float) -> DuplicateResult | str | None:
    try:
        result = load_result(run_dir)
    except RunError as e:  # damaged: the page names it
        return str(e)
    return result


def cached_result(run_dir: Path) -> DuplicateResult | None:
    """The run's saved duplicate search, reloaded when duplicates.json changes.

    Raises:
        RunError: duplicates.json is there but damaged (one line naming it).
    """
    result = _result(str(run_dir), file_stamp(RunPaths(run_dir, generation=None).duplicates))
    if isinstance(result, str):
        raise RunError(result)
    return result


@IMAGE_CACHE.memoize  # bounded in bytes, shared with the Search page
def _image(data_root: str, rel_path: str, stamp: float, roots: tuple[Path, ...]) -> LoadedImage | str:
    try:
        return load_image(dataset_file(data_root, rel_path, roots), name=rel_path)
    except ImageReadError as e:
        return str(e)


def reviewer_ui() -> str:
    """The reviewer's name, kept in the URL so a refresh remembers it."""
    default = st.query_params.get("reviewer", "")
    name = st.sidebar.text_input("Reviewer name", value=default, key="dup_reviewer",
                                 help="Stored with every verdict. Remembered in the page address.")
    name = " ".join(name.split())
    if name and name != default:
        st.query_params["reviewer"] = name
    return name


def search_ui(run: Path, slot=None) -> bool:
    """Status of the run's duplicate search, a form to (re)start it, polling while it runs.

    slot: where a result is on screen already, a small "Search again" pop-over goes there (a
    header column); the failure of the last search and the polling stay in the page's flow.

    Returns:
        True while a search is running (the page says so).
    """
    status = search_status(run)
    box = (slot.popover("Search again", icon=":material/search:", width="stretch") if slot is not None
           else st.expander("Find duplicates", expanded=status.state in ("none", "failed")))
    with box:
        mode = st.radio("Threshold", ["auto", "fixed"], horizontal=True, key="dup_mode",
                        help="auto: calibrated on synthetic copies of held-out images to reach "
                             "precision 0.99. fixed: a cosine you choose.")
        value = st.number_input("Cosine threshold", min_value=-1.0, max_value=1.0, value=0.98,
                                step=0.001, format="%.4f", key="dup_fixed", disabled=mode == "auto")
        if st.button("Find duplicates", key="dup_start", type="primary",
                     disabled=status.state == "running"):
            status = start_search(run, "auto" if mode == "auto" else round(value, 6))
    if status.state == "failed":
        with st.container() if slot is not None else box:
            st.error("The last search failed:")
            st.code(status.message, language=None)
    if status.state == "running":
        _poll(run)
    return status.state == "running"


@st.fragment(run_every=2)
def _poll(run: Path) -> None:
    status = search_status(run)
    if status.state == "running":
        st.info("A duplicate search for this model is running… (this page refreshes when it is done)",
                icon=":material/hourglass_top:")
    else:
        st.rerun()


def summary_ui(result: DuplicateResult) -> None:
    """The rule in force, its estimates and the counts, in one line (the rule in full on demand)."""
    r = result.rule
    flagged = result.flagged
    threshold = f"{r.threshold:.4f}" if r.threshold <= 1 else "off"
    hash_rule = f"≤ {r.hash_threshold}" if r.hash_threshold >= 0 else "off"
    copies = copy_estimate(result)
    verified = "" if copies is None else (
        f" · verified copies: precision {_iv(copies.precision)}, recall {_iv(copies.recall)}")
    by_edit = "" if copies is None else (
        f" The geometric check ({result.verify_rule.describe()}) was calibrated on copies of held-out "
        f"films at a prevalence of {copies.prevalence:g}; 95 % bootstrap intervals. Recall by edit: "
        + ", ".join(f"{k} {_iv(v)}" for k, v in copies.recall_by_edit.items()) + ".")
    st.caption(f"Cosine threshold {threshold} · pHash {hash_rule} · est. precision "
               f"{_pct(result.estimated_precision)} · est. recall {_pct(result.estimated_recall)}{verified} · "
               f"{len(flagged)} pairs in {len(result.groups)} groups · "
               f"{sum(p.cross_split for p in flagged)} across splits",
               help=f"Rule ({result.method}): a pair is a duplicate when {r.describe(symbols=True)}; "
                    f"identical pixels always.{by_edit}")


def _iv(x: Interval) -> str:
    return f"{x.value:.3f} [{x.low:.3f}–{x.high:.3f}]"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def filters_ui(result: DuplicateResult, box, switch) -> tuple[QueueFilter, bool]:
    """Queue filters and order (an expander in `box`), and the grid switch (in `switch`).

    Returns:
        (the filter, True for the grid of many pairs).
    """
    grid = switch.toggle("Grid", key="dup_grid", help="Many pairs at once, with bulk verdicts.")
    with box.expander("Filters and order"):
        c1, c2, c3 = st.columns([1.2, 2, 2])
        status = c1.selectbox("Status", STATUSES, format_func=STATUS_LABELS.get, key="dup_status")
        low = min([p.score for p in result.pairs] + [0.0])
        lo, hi = c2.slider("Cosine range", min_value=float(np.floor(low * 100) / 100), max_value=1.0,
                           value=(float(np.floor(low * 100) / 100), 1.0), step=0.001, key="dup_score")
        kinds = c3.multiselect("Kind (duplicates)", KINDS, format_func=KIND_LABELS.get, key="dup_kinds")
        c4, c5, c6 = st.columns([1, 1, 2])
        cross = c4.checkbox("Cross-split only", key="dup_cross")
        flagged = c5.checkbox("Flagged pairs only", value=True, key="dup_flagged",
                              help="Off: also near misses just under the threshold, which help calibrate.")
        sort = c6.selectbox("Order", list(SORTS), format_func=SORTS.get, key="dup_sort")
        found = found_kinds_ui()
    return QueueFilter(status, lo, hi, tuple(kinds), cross, flagged, found, sort), grid


def pair_table(item: QueueItem, emb: Embeddings, key: bytes) -> None:
    """The two images' labels, splits and patients (their keyed names, `display_patient`)."""
    p = item.pair
    rows = []
    for name, row in (("A", p.i), ("B", p.j)):
        ok = 0 <= row < len(emb)
        rows.append({"image": name, "file": p.a if name == "A" else p.b,
                     "label": emb.labels[row] if ok else "", "split": emb.splits[row] if ok else "",
                     "patient": display_patient(emb.patients[row], key) if ok else ""})
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="dup_pair_table")


def pair_facts(item: QueueItem) -> None:
    """The pair's evidence beside the films: cosine large, the rest as plain lines."""
    p = item.pair
    st.metric("Cosine", f"{p.score:.4f}")
    lines = [f"pHash {p.hash_distance}/64 · identical: {'yes' if p.exact else 'no'}",
             f"cross-split: {'yes' if p.cross_split else 'no'} · {STATUS_LABELS.get(item.status, item.status)}"]
    if item.verdict is not None:
        v = item.verdict
        kind = f" ({KIND_LABELS.get(v.kind, v.kind)})" if v.kind else ""
        lines.append(f"verdict: {v.verdict.replace('_', ' ')}{kind} by {v.reviewer}")
    st.text("\n".join(lines))


def _display(img: LoadedImage, window: Window | None) -> np.ndarray:
    return windowed_pixels(img, window)


def _crop(pixels: np.ndarray, zoom: int, cx: float, cy: float) -> np.ndarray:
    """The 1/zoom part of the image centred at (cx, cy) (fractions), native pixels."""
    if zoom <= 1:
        return pixels
    h, w = pixels.shape[:2]
    ch, cw = max(1, h // zoom), max(1, w // zoom)
    y0 = int(np.clip(cy * h - ch / 2, 0, h - ch))
    x0 = int(np.clip(cx * w - cw / 2, 0, w - cw))
    return pixels[y0:y0 + ch, x0:x0 + cw]


def _fit(pixels: np.ndarray, height: int = FILM_HEIGHT) -> int:
    """Display width that gives the film `height` pixels on screen."""
    h, w = pixels.shape[:2]
    return max(1, int(round(w * height / max(h, 1))))


def images_ui(item: QueueItem, data_root: Path, roots: tuple[Path, ...]) -> None:
    """Both films side by side (fitting the screen), or their difference or overlay; zoom below.
    `roots`: the allowed roots a film added from outside the dataset may lie in."""
    from core.review import difference_image, overlay_image

    p = item.pair
    a = _image(str(data_root), p.a, file_stamp(data_root / p.a), roots)
    b = _image(str(data_root), p.b, file_stamp(data_root / p.b), roots)
    if isinstance(a, str) or isinstance(b, str):
        st.error("An image of this pair cannot be read:")
        st.code("\n".join(x for x in (a, b) if isinstance(x, str)), language=None)
        return
    view = st.session_state.get("dup_view") or "Side by side"
    zoom = int(st.session_state.get("dup_zoom") or 1)
    cx, cy = st.session_state.get("dup_cx", 0.5), st.session_state.get("dup_cy", 0.5)
    window = _window(a)
    pa, pb = _display(a, window), _display(b, window if b.raw is not None else None)
    films = st.container()
    c1, c2, c3 = st.columns([2, 1, 2])
    c1.segmented_control("View", ["Side by side", "Difference", "Overlay"], default="Side by side",
                         key="dup_view")
    c2.selectbox("Zoom", [1, 2, 4, 8], format_func=lambda z: f"{z}×", key="dup_zoom")
    if zoom > 1:
        c3.slider("Centre across", 0.0, 1.0, 0.5, 0.05, key="dup_cx")
        c3.slider("Centre down", 0.0, 1.0, 0.5, 0.05, key="dup_cy")
    _window_ui(a)
    with films:
        if view == "Side by side":
            left, right = st.columns(2)
            for col, pix, name, img in ((left, pa, p.a, a), (right, pb, p.b, b)):
                with col:
                    shown = _crop(pix, zoom, cx, cy)
                    st.image(to_uint8(shown), width=_fit(shown))
                    h, w = img.pixels.shape
                    st.text(f"{name}\n{w} × {h} px, {img.source_format}")
        elif view == "Difference":
            shown = _crop(difference_image(pa, pb), zoom, cx, cy)
            st.image(to_uint8(shown), width=_fit(shown))
            st.caption("|A − B| with B resized to A, stretched so the largest difference is white; "
                       "black means identical pixels.")
        else:
            shown = _crop(overlay_image(pa, pb), zoom, cx, cy)
            st.image(shown, width=_fit(shown))
            st.caption("A in red, B in cyan: grey where they agree, coloured where they differ.")


def _window(img: LoadedImage) -> Window | None:
    """The window chosen for a DICOM image (None: not DICOM)."""
    base = default_window(img)
    if base is None:
        return None
    return Window(float(st.session_state.get("dup_wl_c", base.center)),
                  float(st.session_state.get("dup_wl_w", base.width)), base.function)


def _window_ui(img: LoadedImage) -> None:
    """Window/level inputs for DICOM images (read by _window on the next run)."""
    base = default_window(img)
    if base is None:
        return
    with st.expander("Window / level (DICOM)"):
        c1, c2 = st.columns(2)
        c1.number_input("Level (centre)", value=float(base.center), key="dup_wl_c")
        c2.number_input("Window (width)", value=float(base.width), min_value=1e-3, key="dup_wl_w")


def short_kind(kind: str) -> str:
    """A kind's label as a button shows it ('Copy' for 'copy (same film, transformed)'): the
    words before the explanation, which the button's help gives in full."""
    label = re.split(r" \(|,", KIND_LABELS[kind])[0]
    return label[0].upper() + label[1:]


def verdict_ui(key: str) -> tuple[str, str, str] | None:
    """Verdict buttons in a fixed order, two a row (the key each shortcut names is on its
    button), and an optional note: all six fit beside the films at 1280 x 720.

    Returns:
        (verdict, kind, note) when a button was pressed, else None.
    """
    chosen = None
    cols = [c for _ in range(0, len(KINDS), 2) for c in st.columns(2)]
    for n, (col, kind) in enumerate(zip(cols, KINDS, strict=False)):
        if col.button(short_kind(kind), key=f"dup_v_{kind}", shortcut=str(n + 1), width="stretch",
                      type="primary", help=f"Duplicate: {KIND_LABELS[kind]} (key {n + 1})"):
            chosen = ("duplicate", kind)
    n1, n2 = st.columns(2)
    if n1.button("Not duplicate", key="dup_v_not", shortcut="N", width="stretch", help="Not a duplicate (key N)"):
        chosen = ("not_duplicate", "")
    if n2.button("Skip", key="dup_v_skip", shortcut="S", width="stretch", help="Skip for now (key S)"):
        chosen = ("skip", "")
    note = st.text_input("Note (optional)", key=f"dup_note_{key}", label_visibility="collapsed",
                         placeholder="Note (optional)")
    st.caption(SHORTCUTS)
    return None if chosen is None else (*chosen, note)


def histogram(pos: list[float], neg: list[float], threshold: float | None, title: str,
              names: tuple[str, str] = ("duplicates", "non-duplicates"), x_title: str = "cosine") -> go.Figure:
    """Overlaid histograms of two score sets with the threshold as a vertical line."""
    fig = go.Figure()
    for values, name, colour in ((pos, names[0], "#d62728"), (neg, names[1], "#1f77b4")):
        fig.add_trace(go.Histogram(x=values, name=name, opacity=0.6, nbinsx=60, histnorm="percent",
                                   marker_color=colour))
    if pos and neg and x_title == "cosine":  # the interesting part is near 1
        low = min(float(np.quantile(pos, 0.02)), float(np.quantile(neg, 0.5)))
        fig.update_xaxes(range=[low, 1.0005])
    if threshold is not None:
        fig.add_vline(x=threshold, line_dash="dash", annotation_text="threshold")
    fig.update_layout(barmode="overlay", title=title, xaxis_title=x_title, yaxis_title="% of each set",
                      height=320, margin={"l": 40, "r": 10, "t": 40, "b": 40})
    return fig
