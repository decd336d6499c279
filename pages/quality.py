"""Data quality: galleries of what may be wrong with the active run's films, and its report.

Five lists (core.quality), one shown at a time: outliers and likely label errors from the
run's embedding, exposure, blur and near-empty or non-radiograph films from the films' image
statistics, measured once (a button) and kept in the run folder. The report (core.report) is
one HTML file made when its button is pressed.
"""

from __future__ import annotations

from pages._routing import route_through_entry_point

route_through_entry_point()  # before the imports below, which load torch (seconds)

from pathlib import Path

import streamlit as st

from core.data import allowed_roots
from core.files import file_stamp
from core.quality import STATS_FILE, RunQuality, run_quality
from core.report import report_html
from core.review import TagStore
from core.run_folder import RunPaths
from pages._duplicates_ui import reviewer_ui
from pages._films_ui import bulk_tag_ui
from pages._images_ui import GridItem, escape_markdown, image_grid
from pages._shared import (
    compact_banners,
    flash,
    no_model_note,
    patient_names_key,
    stop_on_error,
    synthetic_banner,
    workspace_ui,
)

COLUMNS = 6
THUMB = 140  # px: six a row beside the sidebar at 1280 px


@st.cache_data(max_entries=8, show_spinner="Finding outliers and label disagreements…")
def _quality(run_dir: str, roots: tuple[Path, ...], stamp: float) -> RunQuality:
    return run_quality(run_dir, roots)


def load_quality(run: Path, roots: tuple[Path, ...]) -> RunQuality:
    """The run's lists, recomputed only when its films, embedding or statistics change."""
    paths = RunPaths(run)
    stamp = sum(file_stamp(p) for p in (paths.embeddings, paths.items, paths.config, run / STATS_FILE))
    with stop_on_error():
        return _quality(str(run), roots, stamp)


def measure_ui(quality: RunQuality, run: Path, roots: tuple[Path, ...]) -> None:
    """The offer to measure the films the image lists need (once; kept in the run folder)."""
    n = quality.n_unmeasured
    left, right = st.columns([3, 1], vertical_alignment="center")
    left.info(f"Exposure, blur and content need each film's grey levels and sharpness: {n:,} of "
              f"{quality.n_films:,} films are not measured yet. Each is read once; the figures "
              "stay in the run folder.")
    if right.button(f"Measure {n:,} films", key="q_measure", type="primary", width="stretch"):
        bar = st.progress(0.0, text="Measuring…")
        with stop_on_error():
            run_quality(run, roots, measure=True,
                        progress=lambda done, total: bar.progress(done / total, text=f"{done:,} of {total:,} films"))
        flash(f"Measured {n:,} films.")
        st.rerun()


def list_ui(quality: RunQuality, run: Path, roots: tuple[Path, ...]) -> None:
    """One list at a time (chosen with its count), as thumbnails with rank, score and reason."""
    names = {x.name: x for x in quality.lists}
    choice = st.segmented_control(
        "List", list(names), default="outliers", key="q_list", label_visibility="collapsed",
        format_func=lambda n: names[n].title + ("" if names[n].skipped or names[n].pending
                                                  else f" ({len(names[n])})")) or "outliers"
    shown = names[choice]
    st.caption(escape_markdown(shown.meaning + "."))
    if shown.skipped:
        st.info(escape_markdown(shown.skipped))
    elif shown.pending:
        st.info("Measure the films (above) to see this list.")
    elif not shown.findings:
        st.success("No film on this list.")
    else:
        bulk_tag_ui(TagStore(ws.reviews_db, dataset=str(quality.data_root)),
                    [f.path for f in shown.findings], reviewer_ui(), key=f"q_tag_{choice}",
                    what="on this list")  # the Films page filters by the tag
        image_grid([GridItem(f.path, f.label, f"{n}. {f.score_name} {f.score:g}", (f.reason,))
                    for n, f in enumerate(shown.findings, 1)],
                   quality.data_root, run, columns=COLUMNS, size=THUMB, roots=roots)


title_col, report_col = st.columns([3, 1], vertical_alignment="center")
title_col.title("Data quality", anchor=False)
ws = workspace_ui()
run = ws.active_run
if run is None:
    synthetic_banner(ws)
    st.info(no_model_note(ws))
    st.stop()
compact_banners(ws, run)
roots = allowed_roots(ws.root)  # films `add` took from other folders are opened inside these only
quality = load_quality(run, roots)
report_col.download_button(
    "Download report (HTML)", lambda: report_html(run, patient_names_key(ws), roots)[0],
    file_name=f"{run.name}-report.html", mime="text/html", on_click="ignore", key="q_report",
    width="stretch", help="One self-contained file: summary, duplicate groups, leakage, these "
                          "lists and the metrics beside baselines. Opening it makes no request.")
flash()
if quality.unreadable:
    st.warning(f"{len(quality.unreadable):,} films could not be read and are on no list, e.g. "
               f"{escape_markdown(quality.unreadable[0][1])}")
if quality.n_unmeasured:
    measure_ui(quality, run, roots)
list_ui(quality, run, roots)
