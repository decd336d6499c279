"""Widgets and small helpers of the Embedding map page (the page itself is pages/map.py);
the run's film colourings and duplicate groups are shared with the Films grid."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.data.dataset import HEADER_CACHE
from core.data.overview import NONE, OTHER, film_colourings, film_headers
from core.embed import Embeddings, Projection, ProjectionSpec, compute_projection, load_projection
from core.files import file_stamp
from core.jobs import projection_status, start_projection
from core.run_folder import RunPaths
from core.runs import duplicate_group_of
from pages._images_ui import escape_markdown
from pages._shared import load_embeddings, load_json

SPLIT_NAMES = {"all": "All images", "train": "Train", "val": "Validation", "test": "Test"}
# every colouring, in the order offered; a run is offered only those it has (map_controls_ui)
COLOUR_BY = ("label", "patient", "view", "folder", "study year", "split", "duplicate group")
PERPLEXITIES = (5, 10, 20, 30, 50, 100)
MAX_GROUP_COLOURS = 20  # more duplicate groups than this share one colour
# Okabe-Ito: distinct for every class, also for colour-blind readers; grey is kept for "none".
CLASS_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000")
GROUP_PALETTE = ("#E6194B", "#3CB44B", "#4363D8", "#F58231", "#911EB4", "#42D4F4", "#F032E6", "#BFEF45",
                 "#469990", "#9A6324", "#800000", "#808000", "#000075", "#FFE119", "#DCBEFF", "#AAFFC3",
                 "#FABED4", "#FFD8B1", "#E6BEFF", "#000000", "#5A5A5A")
NONE_GREY = "#C8C8C8"
# session state: films one page hands the other (a list of dataset paths), read once there
TO_MAP = "map_from_grid"  # the Films grid's selection, ringed and listed on the Map
TO_GRID = "grid_from_map"  # the Map's box or lasso selection, selected in the Films grid
NONE_VALUES = ("no group", NONE, OTHER)


@dataclass(frozen=True)
class MapChoices:
    """What the user picked above the map."""

    run: Path
    split: str
    view: str  # 't-SNE' or 'PCA'
    perplexity: float
    seed: int
    colour_by: str
    find: str


def map_controls_ui(runs: Sequence[Path], active: Path | None,
                    colourings: Callable[[Path], Sequence[str]]) -> MapChoices:
    """Run, split, view, colouring and the find box, in one row; t-SNE settings in an expander.

    Args:
        runs: finished runs, newest first.
        active: the workspace's active run (the default).
        colourings: what a run's films can be coloured by (COLOUR_BY names it has: no
            'label' for an unlabelled run, no 'duplicate group' before a duplicate search).
    """
    names = [r.name for r in runs]
    default = names.index(active.name) if active is not None and active.name in names else 0
    c1, c2, c3, c4, c5 = st.columns([2, 1.2, 1, 1.3, 2])
    run_name = c1.selectbox("Run", names, index=default, key="map_run",
                            help="Defaults to the active model.")
    split = c2.selectbox("Split", list(SPLIT_NAMES), format_func=SPLIT_NAMES.get, key="map_split")
    view = c3.radio("Map", ("t-SNE", "PCA"), key="map_view", horizontal=True,
                    help="PCA is instant; t-SNE is computed once in the background and kept with the run.")
    run = runs[names.index(run_name)]
    have = set(colourings(run))
    colours = [c for c in COLOUR_BY if c in have]
    colour_by = c4.selectbox("Colour by", colours, key="map_colour")
    find = c5.text_input("Find a file by name", key="map_find", placeholder="part of a file name")
    with st.expander("t-SNE settings"):
        s1, s2 = st.columns(2)
        perplexity = s1.select_slider("Perplexity", PERPLEXITIES, value=30, key="map_perplexity")
        seed = int(s2.number_input("Seed", min_value=0, max_value=10_000, value=0, step=1, key="map_seed"))
    return MapChoices(run, split, view, float(perplexity), seed, colour_by,
                      find.strip())



@st.cache_data(max_entries=8, show_spinner=False)
def _groups(run_dir: str, stamp: float) -> dict[str, int]:
    return duplicate_group_of(run_dir)

def groups_of(run: Path) -> dict[str, int]:
    """Duplicate group of each grouped image of the run ({} before a duplicate search)."""
    return _groups(str(run), file_stamp(RunPaths(run, generation=None).duplicates))


@st.cache_data(max_entries=8, show_spinner="Reading the films' DICOM headers…")
def _films(run_dir: str, data_root: str, key: bytes, stamp: float) -> dict[str, list[str]]:
    emb = load_embeddings(Path(run_dir))
    root = Path(data_root)
    headers = film_headers(root, emb.paths, Path(run_dir) / HEADER_CACHE) if data_root and root.is_dir() else {}
    return film_colourings(emb.paths, emb.labels, emb.patients, headers, key)


def films_of(run: Path, key: bytes) -> dict[str, list[str]]:
    """The run's colourings from its films (label, patient, view, folder, study year): only
    those it has, patients as keyed names."""
    saved = load_json(RunPaths(run).config)
    root = saved.get("data", "") if isinstance(saved, dict) and isinstance(saved.get("data"), str) else ""
    return _films(str(run), root, key, file_stamp(RunPaths(run).embeddings))


@st.cache_data(max_entries=16, show_spinner="Computing the PCA preview…")
def _pca(run_dir: str, split: str, stamp: float) -> Projection:
    spec = ProjectionSpec("pca", split=split)
    return load_projection(run_dir, spec) or compute_projection(run_dir, spec)


@st.cache_data(max_entries=16, show_spinner=False)
def _saved(run_dir: str, spec: ProjectionSpec, stamp: float) -> Projection | None:
    return load_projection(run_dir, spec)


def pca_projection(run_dir: Path, split: str) -> Projection:
    """The PCA map of a split (instant; cached per embeddings version)."""
    return _pca(str(run_dir), split, file_stamp(RunPaths(run_dir).embeddings))


def saved_projection(run_dir: Path, spec: ProjectionSpec) -> Projection | None:
    """A computed t-SNE map, None until it exists."""
    from core.embed.projection import projection_path

    path = projection_path(run_dir, spec)
    return _saved(str(run_dir), spec, file_stamp(path) + file_stamp(RunPaths(run_dir).embeddings))


@st.fragment(run_every=1.0)
def tsne_progress_ui(run_dir: Path, spec: ProjectionSpec) -> None:
    """Progress of the background t-SNE; reruns the page when the map is ready."""
    status = projection_status(run_dir, spec)
    if status.state == "done":
        st.rerun()  # the whole page: draw the t-SNE map
    if status.state == "missing":
        status = start_projection(run_dir, spec)
    if status.state == "failed":
        st.error(f"t-SNE failed: {escape_markdown(status.message)}")
        if st.button("Try again", key="map_tsne_retry"):
            start_projection(run_dir, spec)
        return
    st.progress(status.fraction, text=f"Computing t-SNE ({status.message or 'starting'}) — "
                                      "showing the PCA preview until it is ready.")


def selected_rows(event: Mapping[str, Any] | None) -> list[int]:
    """Embedding rows of the points selected in the chart (from each point's customdata[0]).

    Args:
        event: what st.plotly_chart returned with on_select='rerun' (or None).

    Returns:
        Rows in selection order, without repeats.
    """
    points = ((event or {}).get("selection") or {}).get("points") or []
    rows: list[int] = []
    for p in points:
        data = p.get("customdata")
        if isinstance(data, list | tuple) and data:
            try:
                row = int(data[0])
            except (TypeError, ValueError):
                continue
            if row not in rows:
                rows.append(row)
    return rows


def is_area_selection(event: Mapping[str, Any] | None) -> bool:
    """True for a box or lasso selection (as opposed to a click on a point)."""
    selection = (event or {}).get("selection") or {}
    return bool(selection.get("box") or selection.get("lasso"))


def find_rows(paths: Sequence[str], rows: np.ndarray, text: str, limit: int = 50) -> list[int]:
    """Rows among `rows` whose path contains `text` (case-insensitive); exact names, then stems, first.

    Returns:
        At most `limit` rows.
    """
    needle = text.strip().lower()
    if not needle:
        return []
    hits = [int(r) for r in rows if needle in paths[r].lower()]

    def rank(r: int) -> tuple[int, str]:
        name = Path(paths[r])
        return (0 if name.name.lower() == needle else 1 if name.stem.lower() == needle else 2, paths[r])

    hits.sort(key=rank)
    return hits[:limit]


def colour_values(emb: Embeddings, rows: np.ndarray, colour_by: str,
                  group_of: Mapping[str, int],
                  films: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """The legend entry of each point for the chosen colouring.

    `films`: core.data.overview.film_colourings of the run (label, patient, view, folder,
    study year: one value per embedding row); patients in it are already keyed names.
    """
    if films is not None and colour_by in films:
        values = films[colour_by]
        return [values[r] for r in rows]
    if colour_by == "split":
        return [emb.splits[r] or "(none)" for r in rows]
    if colour_by == "duplicate group":
        out = []
        for r in rows:
            g = group_of.get(emb.paths[r])
            out.append("no group" if g is None else f"group {g}" if g <= MAX_GROUP_COLOURS
                       else f"groups > {MAX_GROUP_COLOURS}")
        return out
    return [emb.labels[r] for r in rows]


def _natural(value: str) -> tuple:
    """'group 2' before 'group 10'; 'groups > 20' last among groups; 'no group' at the very end."""
    if value in NONE_VALUES:
        return (2, 0, value)
    head, _, tail = value.rpartition(" ")
    return (1, int(tail), head) if tail.isdigit() else (0 if not value.startswith("groups >") else 1,
                                                         10**9, value)


def legend_colours(values: Sequence[str]) -> list[tuple[str, str]]:
    """Each legend entry in order (classes by name, groups by number, 'no group' last) with its colour.

    Groups get a palette of their own; 'no group' and '(none)' are grey.
    """
    order = sorted(set(values), key=_natural)
    grouped = any(v.startswith("group") or v == "no group" for v in order)
    many = sum(v not in NONE_VALUES for v in order) > len(CLASS_PALETTE)
    palette = GROUP_PALETTE if grouped or many else CLASS_PALETTE
    out, i = [], 0
    for v in order:
        if v in NONE_VALUES:
            out.append((v, NONE_GREY))
        else:
            out.append((v, palette[i % len(palette)]))
            i += 1
    return out


def map_figure(projection: Projection, emb: Embeddings, colours: Sequence[str],
               highlight: Sequence[int] = (), colour_by: str = "label") -> go.Figure:
    """Scatter of the map, one trace per colour; hover shows file name and label (and the
    colouring's value when it is not the label: a patient's keyed name, a view, ...).

    Each point's customdata is [row, name, hover line] (HTML-escaped, since Plotly reads tags
    in hover text). `highlight` rows get a ring on top.
    """
    xy, rows = projection.xy, projection.rows
    shown = {int(r): c for r, c in zip(rows, colours, strict=True)}

    def line(r: int) -> str:
        if colour_by == "label":
            return html.escape(emb.labels[r])
        parts = [emb.labels[r]] if emb.labels[r] else []
        return html.escape(" · ".join([*parts, f"{colour_by}: {shown.get(int(r), '')}"]))

    n = rows.size
    size = 9 if n <= 500 else 6 if n <= 5000 else 4
    fig = go.Figure()
    colours_arr = np.array(colours, dtype=object)
    for value, colour in legend_colours(colours):
        mask = colours_arr == value
        sel = rows[mask]
        none = value in NONE_VALUES
        fig.add_trace(go.Scattergl(
            x=xy[mask, 0], y=xy[mask, 1], mode="markers", name=html.escape(str(value)),
            marker={"size": size - 2 if none else size, "opacity": 0.5 if none else 0.85, "color": colour},
            customdata=[[int(r), html.escape(Path(emb.paths[r]).name), line(r)]
                        for r in sel],
            hovertemplate="%{customdata[1]}<br>%{customdata[2]}<extra></extra>"))
    where = {int(r): i for i, r in enumerate(rows)}
    marked = [r for r in highlight if r in where]
    if marked:
        idx = [where[r] for r in marked]
        fig.add_trace(go.Scattergl(
            x=xy[idx, 0], y=xy[idx, 1], mode="markers", name="found",
            marker={"size": size + 12, "symbol": "circle-open", "color": "#d62728", "line": {"width": 3}},
            customdata=[[r, html.escape(Path(emb.paths[r]).name), line(r)]
                        for r in marked],
            hovertemplate="%{customdata[1]}<br>%{customdata[2]}<extra>found</extra>"))
    # No equal aspect: t-SNE distances between clusters mean little, and the plot fills its box.
    # No dragmode either: Streamlit then pans by default and a click selects a point; in its
    # box or lasso mode (toolbar) a click would not select.
    # The legend above the plot: below it, it was off a 1280 x 720 screen.
    fig.update_layout(height=620, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      legend={"itemsizing": "constant", "orientation": "h", "x": 0, "xanchor": "left",
                              "y": 1.0, "yanchor": "bottom"},
                      xaxis={"visible": False}, yaxis={"visible": False})
    return fig
