"""Films: the run's films as a grid, filtered, sorted by similarity, selected, tagged, saved.

Streamlit has no grid widget (and no maintained component gives thumbnails with a checkbox
each without a network font or script), so the grid is rows of `st.columns` (the shared
pages/_images_ui.image_grid), a page at a time, each cell with its own checkbox and a button
that sorts everything by similarity to that film. Filters: label, split, patient (keyed
names), source folder, tag, duplicate group. Tags and saved views live in the workspace's
review database beside the verdicts (core.review.tags: append-only, who and when), so two
people saving a view at once both keep theirs. "Open in the map" hands the selection to the
Embedding map, which rings it; the map's box or lasso selection comes back the same way.
"""

from __future__ import annotations

from pages._routing import route_through_entry_point

route_through_entry_point()  # before the imports below, which load torch (seconds)

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from core.data import allowed_roots
from core.review import TagStore
from core.run_folder import RunPaths
from pages._duplicates_ui import reviewer_ui
from pages._films_ui import (
    ONLY_SELECTED,
    SIMILAR_KEY,
    bulk_tag_ui,
    film_values,
    filters_ui,
    matching_rows,
    save_error_ui,
    views_ui,
)
from pages._images_ui import GridItem, image_grid, short_name
from pages._map_ui import TO_GRID, TO_MAP, groups_of
from pages._shared import (
    compact_banners,
    finished_runs,
    flash,
    get_searcher,
    load_embeddings,
    load_json,
    no_model_note,
    patient_names_key,
    stop_on_error,
    synthetic_banner,
    workspace_ui,
)

PAGE_SIZE = 24  # films a page: four rows of six
COLUMNS = 6
THUMB = 140  # px: six a row beside the sidebar at 1280 px
SELECTED = "films_selected"  # session state: the selected films' paths (kept across pages)


def similarity_order(run: Path, row: int, rows: list[int]) -> tuple[list[int], dict[int, float]]:
    """`rows` sorted by cosine to film `row` in the run's index (the film itself first), and
    each row's cosine."""
    emb = load_embeddings(run)
    with stop_on_error():
        hits = get_searcher(run).search_vector(emb.vectors[row], len(emb))
    score = {h.index: h.score for h in hits}
    score[row] = max(score.get(row, 1.0), *score.values())  # itself first, even on float ties
    return sorted(rows, key=lambda r: (-score.get(r, -2.0), r)), score


def _toggle(path: str, key: str) -> None:
    picked = st.session_state.setdefault(SELECTED, set())
    (picked.add if st.session_state.get(key) else picked.discard)(path)


def _sort_by(path: str) -> None:
    st.session_state[SIMILAR_KEY] = path


def cell_ui(paths: list[str], shown: list[int]) -> Callable[[int, GridItem], None]:
    """The widgets under each thumbnail: a checkbox (the selection) and 'Similar' (the sort)."""
    picked: set[str] = st.session_state.setdefault(SELECTED, set())

    def below(i: int, item: GridItem) -> None:
        row = shown[i]
        key = f"films_pick_{row}"
        st.session_state[key] = item.path in picked  # before the checkbox: a callback changed it
        left, right = st.columns(2, gap="small")
        left.checkbox(f"Select {item.path}", key=key, on_change=_toggle, args=(item.path, key),
                      label_visibility="collapsed")  # a label did not fit: "Se…"
        right.button("Similar", key=f"films_sim_{row}", type="tertiary", on_click=_sort_by,
                     args=(item.path,), help=f"Sort every film by similarity to {paths[row]}")

    return below


def handed_over(paths: list[str]) -> None:
    """Films the Map's selection sent here become the selection, shown alone."""
    sent = st.session_state.pop(TO_GRID, None)
    if sent:
        known = set(paths)
        st.session_state[SELECTED] = {p for p in sent if p in known}
        st.session_state[ONLY_SELECTED] = True


ws = workspace_ui()
st.title("Films")
runs = finished_runs(ws)
if ws.active_run is None or not runs:
    synthetic_banner(ws)
    st.info(no_model_note(ws))
    st.stop()
run = ws.active_run
compact_banners(ws, run)
emb = load_embeddings(run)
saved = load_json(RunPaths(run).config)
data = saved.get("data") if isinstance(saved, dict) else None
data_root = Path(data if isinstance(data, str) else "")
roots = allowed_roots(ws.root)
store = TagStore(ws.reviews_db, dataset=str(data_root))
reviewer = reviewer_ui()
handed_over(emb.paths)
flash()

with stop_on_error():
    tags_now = store.current()
values = film_values(emb, patient_names_key(ws), groups_of(run), tags_now)
chosen = filters_ui(values)
rows = matching_rows(values, chosen, len(emb))
picked: set[str] = st.session_state.setdefault(SELECTED, set())

# Three rows of controls, then the grid: at 1280 x 720 its first row of films shows.
s1, s2, s3 = st.columns([3, 1.6, 1.2], vertical_alignment="bottom")
row_of = {p: r for r, p in enumerate(emb.paths)}
if st.session_state.get(SIMILAR_KEY) not in row_of:
    st.session_state[SIMILAR_KEY] = None  # a saved view's film that is no longer in the run
similar_to = s1.selectbox("Sort by similarity to", emb.paths, index=None, key=SIMILAR_KEY,
                          placeholder="file name order (or press 'Similar' under a film)")
only = s3.checkbox("Only the selected", key=ONLY_SELECTED)
if only:
    rows = [r for r in rows if emb.paths[r] in picked]
score: dict[int, float] = {}
if similar_to is not None:
    rows, score = similarity_order(run, row_of[similar_to], rows)
else:
    rows = sorted(rows, key=lambda r: emb.paths[r])
pages = max(1, -(-len(rows) // PAGE_SIZE))
page = s2.selectbox("Page", range(1, pages + 1), key=f"films_page_{len(rows)}_{rows[0] if rows else 0}",
                    format_func=lambda n: f"{n} of {pages} · {len(rows):,} of {len(emb):,} films")
shown = rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]

p1, p2, p3, p4, p5, p6 = st.columns(6, vertical_alignment="bottom")
if p1.button("Select page", key="films_sel_page", width="stretch", disabled=not shown):
    picked.update(emb.paths[r] for r in shown)
    st.rerun()
if p2.button(f"Select all {len(rows):,}", key="films_sel_all", width="stretch", disabled=not rows):
    picked.update(emb.paths[r] for r in rows)
    st.rerun()
if p3.button(f"Clear ({len(picked):,})", key="films_sel_clear", width="stretch", disabled=not picked):
    picked.clear()
    st.rerun()
with p4.popover(f"Tag {len(picked):,} selected", width="stretch"):
    bulk_tag_ui(store, [p for p in emb.paths if p in picked], reviewer, key="films_bulk",
                show_errors=False)
if p5.button("Open in the map", key="films_to_map", width="stretch", disabled=not picked,
             help="The Embedding map, with the selected films ringed"):
    st.session_state[TO_MAP] = [p for p in emb.paths if p in picked]
    st.switch_page("pages/map.py")
with p6.popover("Saved views", width="stretch"):
    views_ui(store, reviewer)
save_error_ui()  # a refused tag or view: here, the popovers have closed

if not shown:
    st.info("No film matches these filters." if not only else "No selected film matches these filters.")
    st.stop()
items = [GridItem(emb.paths[r], emb.labels[r],
                  f"cosine {score[r]:.3f}" if r in score else "",
                  tuple(x for x in (emb.splits[r], short_name(", ".join(tags_now.get(emb.paths[r], ())), 18))
                        if x))
         for r in shown]
image_grid(items, data_root, run, columns=COLUMNS, size=THUMB, roots=roots,
           below=cell_ui(emb.paths, shown))
