"""Widgets of the Films grid (pages/films.py) and the bulk tag control the Data quality page
shares: each film's filter values, the filter row, bulk tagging, saved views."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import streamlit as st

from core.data.overview import top_folder
from core.data.patient_ids import display_patients
from core.embed import Embeddings
from core.errors import UserError, one_line
from core.review import TagStore
from pages._images_ui import escape_markdown
from pages._shared import stop_on_error

FILTERS = ("label", "split", "patient", "folder", "tag", "duplicate group")  # in the order shown
FILTER_KEY = "films_f_"  # + a filter's name: its multiselect's session key
SIMILAR_KEY = "films_similar_to"  # the film the grid is sorted by similarity to (None: by name)
ONLY_SELECTED = "films_only_selected"
NONE = "(none)"


def film_values(emb: Embeddings, key: bytes, group_of: Mapping[str, int],
                tags: Mapping[str, Sequence[str]]) -> dict[str, list[tuple[str, ...]]]:
    """The values each film has for each filter the run can use (a film may carry several tags).

    Args:
        emb: the run's embeddings (paths, labels, splits, patients).
        key: the workspace's patient key: patients are shown as keyed names, never raw ids.
        group_of: duplicate group of each grouped film (`groups_of`).
        tags: the tags each film carries (`TagStore.current()`).

    Returns:
        {filter name: one tuple of values per film}; 'label', 'patient', 'folder' and
        'duplicate group' only when the run has them; 'split' and 'tag' always.
    """
    out: dict[str, list[tuple[str, ...]]] = {}
    if any(emb.labels):
        out["label"] = [(v or NONE,) for v in emb.labels]
    out["split"] = [(v or NONE,) for v in emb.splits]
    if any(emb.patients):
        out["patient"] = [(v or NONE,) for v in display_patients(emb.patients, key)]
    folders = [top_folder(p) or NONE for p in emb.paths]
    if len(set(folders)) >= 2:
        out["folder"] = [(f,) for f in folders]
    out["tag"] = [tuple(tags.get(p, ())) for p in emb.paths]
    if group_of:
        out["duplicate group"] = [(f"group {group_of[p]}",) if p in group_of else ("no group",)
                                  for p in emb.paths]
    return out


def _order(value: str) -> tuple:
    head, _, tail = value.rpartition(" ")
    return (value in (NONE, "no group"), head, int(tail) if tail.isdigit() else 0, value)


def filters_ui(values: Mapping[str, list[tuple[str, ...]]]) -> dict[str, list[str]]:
    """One multiselect per filter the run has (empty: no filter), in one row.

    Returns:
        {filter name: the chosen values}, only the filters with a choice.
    """
    names = [n for n in FILTERS if n in values]
    chosen = {}
    for col, name in zip(st.columns(len(names)), names, strict=True):
        options = sorted({v for vs in values[name] for v in vs}, key=_order)
        key = FILTER_KEY + name
        if key in st.session_state:  # a saved view may name a value the run no longer has
            st.session_state[key] = [v for v in st.session_state[key] if v in options]
        picked = col.multiselect(name.capitalize(), options, key=key, placeholder="any",
                                 help="no tag on any film yet" if name == "tag" and not options else None)
        if picked:
            chosen[name] = picked
    return chosen


def matching_rows(values: Mapping[str, list[tuple[str, ...]]], chosen: Mapping[str, Sequence[str]],
                  n: int) -> list[int]:
    """Rows of the films that pass every chosen filter (a film passes one when any of its
    values is chosen)."""
    wanted = {name: set(v) for name, v in chosen.items() if name in values and v}
    return [r for r in range(n) if all(wanted[name] & set(values[name][r]) for name in wanted)]


def view_state() -> dict:
    """The grid's filter state as plain data, what a saved view stores."""
    state: dict = {name: list(st.session_state.get(FILTER_KEY + name) or []) for name in FILTERS}
    state["similar_to"] = st.session_state.get(SIMILAR_KEY)
    return state


def apply_view(filters: Mapping) -> None:
    """Put a saved view's filters into the widgets (a callback: before they are drawn)."""
    for name in FILTERS:
        value = filters.get(name)
        st.session_state[FILTER_KEY + name] = [str(v) for v in value] if isinstance(value, list) else []
    similar = filters.get("similar_to")
    st.session_state[SIMILAR_KEY] = similar if isinstance(similar, str) else None
    st.session_state[ONLY_SELECTED] = False


def _save(action: Callable[[], object], done: str) -> None:
    try:
        action()
    except (UserError, OSError) as e:
        st.session_state["films_error"] = one_line(e)
    else:
        st.session_state["cxr_flash"] = done  # shown by pages._shared.flash


def bulk_tag_ui(store: TagStore, paths: Sequence[str], reviewer: str, key: str,
                what: str = "selected", show_errors: bool = True) -> None:
    """A tag name and buttons adding it to, or taking it off, `paths` at once (one
    transaction); the tags in use are named under it. `key` prefixes the widgets' keys;
    `what` names the films; `show_errors=False` leaves a refusal to `save_error_ui` (inside a
    popover, which closes on the rerun, it would not be seen)."""
    with stop_on_error():
        used = store.counts()
    n = len(paths)
    c1, c2, c3 = st.columns([2, 1, 1], vertical_alignment="bottom")
    tag = c1.text_input("Tag", key=f"{key}_tag", max_chars=40,
                        placeholder=f"e.g. {next(iter(used))}" if used else "a word or two, e.g. check again",
                        help="Stored in the workspace's review database with your name and the time.")
    tag = tag.strip()
    ready = bool(tag) and n > 0
    if c2.button(f"Tag {n:,} {what}", key=f"{key}_add", disabled=not ready, width="stretch",
                 help=None if reviewer else "Enter your reviewer name in the sidebar first."):
        _save(lambda: store.add(paths, tag or "", reviewer=reviewer),
              f"Tagged {n:,} films '{tag}'.")
        st.rerun()
    if c3.button(f"Untag {n:,}", key=f"{key}_remove", disabled=not ready, width="stretch",
                 help=f"Take the tag off the {what} films that carry it"):
        _save(lambda: store.remove(paths, tag or "", reviewer=reviewer),
              f"Took '{tag}' off the {what} films.")
        st.rerun()
    if used:
        st.caption("Tags in use: " + escape_markdown(", ".join(f"{t} ({k:,})" for t, k in used.items())))
    if show_errors:
        save_error_ui()


def save_error_ui() -> None:
    """Why the last tag or view was not saved (one line), once."""
    error = st.session_state.pop("films_error", None)
    if error:
        st.error(escape_markdown(error), icon=":material/error:")


def views_ui(store: TagStore, reviewer: str) -> None:
    """Saved views: pick one to re-apply (or delete), or save the filters now under a name."""
    with stop_on_error():
        views = store.views()
    with st.container():
        a, b, c = st.columns([2, 1, 1], vertical_alignment="bottom")
        name = a.selectbox("Saved view", list(views), index=None, key="films_view",
                           placeholder="none saved yet" if not views else "pick a view")
        b.button("Apply", key="films_view_apply", disabled=name is None, width="stretch",
                 on_click=lambda: apply_view(views[name].filters) if name in views else None)
        if c.button("Delete", key="films_view_delete", disabled=name is None, width="stretch"):
            _save(lambda: store.delete_view(name or "", reviewer=reviewer), f"Deleted the view '{name}'.")
            st.rerun()
    with st.container():
        a, b = st.columns([3, 1], vertical_alignment="bottom")
        new = a.text_input("Save the filters as", key="films_view_name", max_chars=60,
                           placeholder="a name, e.g. pneumonia test films")
        if b.button("Save", key="films_view_save", disabled=not new.strip(), width="stretch"):
            state = view_state()
            _save(lambda: store.save_view(new, state, reviewer=reviewer), f"Saved the view '{new.strip()}'.")
            st.rerun()
