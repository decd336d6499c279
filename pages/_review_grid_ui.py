"""The review grid: many pairs at once as thumbnails, ticked and judged in bulk (one undo each)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import streamlit as st

from core.duplicates import DuplicateResult
from core.review import KIND_LABELS, KINDS, QueueItem, ReviewStore
from pages._images_ui import cached_thumbnail

PER_PAGE = 12
PER_ROW = 3  # pairs per row, two thumbnails each
THUMB = 128


def _tick_key(item: QueueItem) -> str:
    return f"dup_tick_{item.pair.a}|{item.pair.b}"


def grid_ui(queue: Sequence[QueueItem], result: DuplicateResult, store: ReviewStore, run: Path,
            reviewer: str, save: Callable[..., None], roots: tuple[Path, ...] = ()) -> None:
    """A page of pairs with tick boxes, and verdicts for every ticked pair in one step (`roots`:
    the allowed roots a film added from outside the dataset may lie in)."""
    pages = max(1, -(-len(queue) // PER_PAGE))
    c1, c2, c3, c4, c5 = st.columns([1.2, 1.6, 1.3, 1, 1.4], vertical_alignment="bottom")
    page = c1.selectbox("Page", range(1, pages + 1), key="dup_grid_page",
                        format_func=lambda n: f"{n} of {pages}")
    shown = list(queue[(page - 1) * PER_PAGE: page * PER_PAGE])
    if c5.button("Tick all on this page", key="dup_grid_all", width="stretch"):
        for item in shown:
            st.session_state[_tick_key(item)] = True
    kind = c2.selectbox("Kind", KINDS, format_func=KIND_LABELS.get, key="dup_grid_kind")
    ticked = [item for item in shown if st.session_state.get(_tick_key(item))]
    pairs = [(i.pair.a, i.pair.b) for i in ticked]
    common = {"reviewer": reviewer, "run": run.name, "threshold": result.rule.threshold,
              "only_pending": False, "note": "grid"}
    if c3.button(f"Duplicate ({len(ticked)})", key="dup_grid_dup", type="primary", disabled=not ticked,
                 width="stretch"):
        save(lambda: store.record_many(pairs, "duplicate", kind=kind, **common),
             f"{len(pairs)} pairs: duplicate ({KIND_LABELS[kind]}).")
    if c4.button(f"Not dup. ({len(ticked)})", key="dup_grid_not", disabled=not ticked, width="stretch"):
        save(lambda: store.record_many(pairs, "not_duplicate", **common), f"{len(pairs)} pairs: not duplicate.")
    cache_dir = str(run / "thumbnails")
    for start in range(0, len(shown), PER_ROW):
        for col, item in zip(st.columns(PER_ROW, border=True), shown[start:start + PER_ROW], strict=False):
            p = item.pair
            with col:
                a, b = st.columns(2)
                a.image(cached_thumbnail(str(result.data_root), p.a, cache_dir, THUMB, roots), width="stretch")
                b.image(cached_thumbnail(str(result.data_root), p.b, cache_dir, THUMB, roots), width="stretch")
                n = queue.index(item) + 1
                st.checkbox(f"#{n} · cosine {p.score:.4f} · pHash {p.hash_distance}"
                            f"{' · identical' if p.exact else ''}", key=_tick_key(item))
                st.text(f"{Path(p.a).name}\n{Path(p.b).name}\n{item.status.replace('_', ' ')}")
    st.caption("Tick pairs, then judge them together; 'Undo my last' undoes the whole step.")
