"""Embedding map: a run's images in 2-D (t-SNE or PCA), with selection, neighbours and quality."""

from __future__ import annotations

from pages._routing import route_through_entry_point

route_through_entry_point()  # before the imports below, which load torch (seconds)

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.data import allowed_roots
from core.data.patient_ids import display_patient
from core.embed import Embeddings, Projection, ProjectionSpec
from core.retrieval import load_evaluation
from core.run_folder import RunPaths
from core.runs import class_quality, selection_csv
from core.runs.views import value_summary
from pages._images_ui import GridItem, cached_thumbnail, image_grid, short_name
from pages._map_ui import (
    TO_GRID,
    TO_MAP,
    colour_values,
    films_of,
    find_rows,
    groups_of,
    is_area_selection,
    map_controls_ui,
    map_figure,
    pca_projection,
    saved_projection,
    selected_rows,
    tsne_progress_ui,
)
from pages._shared import (
    compact_banners,
    finished_runs,
    get_searcher,
    load_embeddings,
    load_json,
    no_model_note,
    patient_names_key,
    synthetic_banner,
    workspace_ui,
)

MAX_GRID = 60  # images a page for a selection
NEIGHBOURS = 8
NEIGHBOUR_COLUMNS = 3
FOCUS = "map_focus"  # session state: a neighbour opened by its button


def colourings_of(run: Path, key: bytes) -> list[str]:
    """What the Map offers to colour a run by: what its films have, its split, its groups."""
    return [*films_of(run, key), "split", *(["duplicate group"] if groups_of(run) else [])]


def quality_ui(run_dir: Path, emb: Embeddings) -> None:
    """Per-class P@5 and mAP of the run's test queries (a run without labels says it has none)."""
    if not any(emb.labels):
        st.caption("No labels in this run, so no retrieval quality by class: score the model on "
                   "a labelled folder with `python -m core evaluate --run RUN --data DIR`.")
        return
    st.markdown("**Retrieval quality by class**")  # a side column: a subheader would wrap
    rows = class_quality(run_dir)
    if not rows:
        st.caption("No evaluation in this run yet.")
        return
    table = pd.DataFrame([{"class": r.label, "P@5": r.precision_at_5, "mAP": r.map,
                           "queries": r.n_queries} for r in rows])
    st.dataframe(table, hide_index=True, width="stretch",  # pixel widths: all four fit the side
                 column_config={"class": st.column_config.TextColumn(width=116),
                                "P@5": st.column_config.NumberColumn(format="%.2f", width=46),
                                "mAP": st.column_config.NumberColumn(format="%.2f", width=46),
                                "queries": st.column_config.NumberColumn(
                                    "n", width=34, help="test queries of the class")})
    evaluation = load_evaluation(run_dir)
    protocol = evaluation.protocol if evaluation is not None else ""
    if protocol:
        st.caption(f"Protocol: {protocol}.")


def point_ui(run_dir: Path, emb: Embeddings, row: int, data_root: Path, roots: tuple[Path, ...],
             key: bytes) -> None:
    """One image, large, with its nearest neighbours in the whole index (each opens on click);
    `roots`: the allowed roots a film added from outside the dataset may lie in."""
    st.subheader("Selected image")
    cache_dir = str(run_dir / "thumbnails")
    st.image(cached_thumbnail(str(data_root), emb.paths[row], cache_dir, 256, roots), width=256)
    lines = [emb.paths[row]]
    if emb.labels[row]:
        lines.append(f"label: {emb.labels[row]}")
    if emb.patients[row]:
        lines.append(f"patient: {display_patient(emb.patients[row], key)}")
    st.text("\n".join([*lines, f"split: {emb.splits[row] or '—'}"]))
    hits = [h for h in get_searcher(run_dir).search_vector(emb.vectors[row], NEIGHBOURS + 1)
            if h.index != row][:NEIGHBOURS]
    st.markdown(f"**{len(hits)} nearest neighbours** (open one to see its own)")
    # Three to a row: at four, a column of the side panel at 1280 px was ~65 px wide and every
    # button read "#..."; the button says which neighbour, the text under it the rest.
    for start in range(0, len(hits), NEIGHBOUR_COLUMNS):
        row = list(enumerate(hits, 1))[start:start + NEIGHBOUR_COLUMNS]
        for col, (i, h) in zip(st.columns(NEIGHBOUR_COLUMNS), row, strict=False):
            with col:
                st.image(cached_thumbnail(str(data_root), h.path, cache_dir, roots=roots), width="stretch")
                if st.button(f"#{i}", key=f"map_nb_{h.index}", width="stretch",
                             help=f"Open neighbour #{i} ({Path(h.path).name}, cosine {h.score:.3f})"):
                    st.session_state[FOCUS] = h.index
                    st.rerun()
                st.text("\n".join(x for x in (f"{h.score:.3f}", h.label, short_name(Path(h.path).name, 10)) if x))


def selection_ui(run_dir: Path, emb: Embeddings, chosen: list[int], data_root: Path,
                 roots: tuple[Path, ...], colour_by: str, values: list[str], key: bytes) -> None:
    """A box or lasso selection: a summary by the map's colouring (`values`: one per
    embedding row), a CSV of it, and its images a page at a time."""
    st.subheader(f"{len(chosen)} selected images")
    left, right = st.columns([2, 3])
    summary = value_summary(values, chosen)
    name = "class" if colour_by == "label" else colour_by
    left.dataframe(pd.DataFrame([{name: v.label, "images": v.count, "share": v.fraction} for v in summary]),
                   hide_index=True, key="map_sel_summary",
                   column_config={"share": st.column_config.ProgressColumn(format="percent", min_value=0,
                                                                           max_value=1)})
    right.download_button("Download the selection (CSV)", selection_csv(emb, chosen, key),
                          file_name="map-selection.csv", mime="text/csv", on_click="ignore",
                          key="map_sel_csv")
    pages = max(1, -(-len(chosen) // MAX_GRID))
    page = right.selectbox("Page", range(1, pages + 1), key=f"map_sel_page_{len(chosen)}_{chosen[0]}",
                           format_func=lambda n: f"{n} of {pages} ({MAX_GRID} images a page)")
    if right.button("Open in the grid", key="map_sel_grid", icon=":material/grid_view:",
                    help="The Films page, with these films selected (to tag, filter or sort)"):
        st.session_state[TO_GRID] = [emb.paths[r] for r in chosen]
        st.switch_page("pages/films.py")
    shown = chosen[(page - 1) * MAX_GRID: page * MAX_GRID]
    image_grid([GridItem(emb.paths[r], emb.labels[r], emb.splits[r]) for r in shown],
               data_root, run_dir, columns=8, roots=roots)


def choose_projection(run_dir: Path, view: str, spec: ProjectionSpec) -> Projection:
    """The t-SNE map if computed (else start it and show PCA with its progress), or PCA."""
    if view == "t-SNE":
        projection = saved_projection(run_dir, spec)
        if projection is not None:
            return projection
        tsne_progress_ui(run_dir, spec)
    return pca_projection(run_dir, spec.split)


ws = workspace_ui()
st.title("Embedding map")
notes = st.container()  # under the title, filled once the run is chosen
runs = finished_runs(ws)
if not runs:
    synthetic_banner(ws)
    st.info(no_model_note(ws))
    st.stop()

key = patient_names_key(ws)
choices = map_controls_ui(runs, ws.active_run, lambda run: colourings_of(run, key))
run_dir = choices.run
with notes:
    compact_banners(ws, run_dir)  # one caption: the plot starts higher on a laptop screen
emb = load_embeddings(run_dir)
group_of = groups_of(run_dir)
films = films_of(run_dir, key)
saved = load_json(RunPaths(run_dir).config)  # a damaged one is named by the banner above
data_root = Path(saved.get("data", "") if isinstance(saved, dict) else "")
roots = allowed_roots(ws.root)  # films `add` took from other folders are opened inside these only
spec = ProjectionSpec("tsne", choices.perplexity, choices.seed, choices.split)

map_col, side_col = st.columns([3, 1.4])
with map_col:
    if not emb.subset(choices.split).size and choices.split != "all":
        st.warning(f"This run has no images in the {choices.split} split.")
        st.stop()
    projection = choose_projection(run_dir, choices.view, spec)
    found = find_rows(emb.paths, projection.rows, choices.find) if choices.find else []
    row_of = {p: r for r, p in enumerate(emb.paths)}  # films the Films grid handed over: ringed
    handed = [row_of[p] for p in st.session_state.get(TO_MAP) or () if p in row_of]
    colours = colour_values(emb, projection.rows, choices.colour_by, group_of, films)
    method = "t-SNE" if projection.spec.method == "tsne" else "PCA"
    st.caption(f"{projection.rows.size} images · {method} · split: {choices.split} · "
               "click a point to open it; box or lasso select (toolbar) for a group")
    figure = map_figure(projection, emb, colours, found[:1] or handed, choices.colour_by)
    event = st.plotly_chart(figure, key="map_chart",
                            on_select="rerun", selection_mode=("points", "box", "lasso"),
                            config={"displaylogo": False})
    if handed and not found:
        st.caption(f"{len(handed)} films selected in the Films grid are ringed and listed below.")
    if choices.find:
        if found:
            st.caption(f"{len(found)} file(s) match; the first is ringed on the map.")
        else:
            st.caption("No file of this split matches that name.")

chosen = [r for r in selected_rows(event) if 0 <= r < len(emb)]
if tuple(chosen) != st.session_state.get("map_last_selection", ()):
    st.session_state.pop(FOCUS, None)  # a new selection on the map replaces an opened neighbour
st.session_state["map_last_selection"] = tuple(chosen)
with side_col:
    focus = st.session_state.get(FOCUS)
    if isinstance(focus, int) and 0 <= focus < len(emb):
        point_ui(run_dir, emb, focus, data_root, roots, key)
    elif len(chosen) == 1 and not is_area_selection(event):
        point_ui(run_dir, emb, chosen[0], data_root, roots, key)
    elif not chosen and found:
        point_ui(run_dir, emb, found[0], data_root, roots, key)
    quality_ui(run_dir, emb)

if not chosen and handed:
    chosen = handed  # nothing selected on the map: the grid's selection stands in for it
if len(chosen) > 1 or (chosen and (is_area_selection(event) or chosen == handed)):
    selection_ui(run_dir, emb, chosen, data_root, roots, choices.colour_by,
                 colour_values(emb, np.arange(len(emb)), choices.colour_by, group_of, films), key)
