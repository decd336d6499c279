"""The review grid: many pairs at once as thumbnails, ticked and judged in bulk (one undo each)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import streamlit as st

from core.duplicates import DuplicateResult
from core.review import KIND_LABELS, KINDS, QueueItem, ReviewStore, pair_key
from pages._images_ui import cached_thumbnail, escape_markdown

PER_PAGE = 12
PER_ROW = 3  # pairs per row, two thumbnails each
THUMB = 128


DETECTED = "detected"  # the Kind choice that gives each ticked pair the kind the search found
_SHOWN = "dup_grid_shown"  # what the grid showed last: ticked pairs, their states and kinds


def _tick_key(item: QueueItem) -> str:
    return f"dup_tick_{item.pair.a}|{item.pair.b}"


def grid_kinds(items: Sequence[QueueItem], choice: str) -> dict[tuple[str, str], str] | str:
    """The kind each ticked pair is recorded with: the one the search found for it (`DETECTED`)
    or the one the reviewer chose.

    Returns:
        {(a, b): kind}, or the one-line reason nothing can be recorded (pairs the search found
        no kind for, near misses, when `DETECTED` is chosen).
    """
    if choice != DETECTED:
        return {(i.pair.a, i.pair.b): choice for i in items}
    missing = [i for i in items if i.pair.kind not in KINDS]
    if missing:
        names = "; ".join(" · ".join(Path(p).name for p in (i.pair.a, i.pair.b)) for i in missing[:5])
        more = f"; and {len(missing) - 5} more" if len(missing) > 5 else ""
        return (f"Not saved: the search found no kind for {len(missing)} ticked pairs (near misses: "
                f"{names}{more}); choose the kind they are, or untick them.")
    return {(i.pair.a, i.pair.b): i.pair.kind for i in items}


def _kind_label(kind: str) -> str:
    return "each pair's own kind (as found)" if kind == DETECTED else KIND_LABELS[kind]


def grid_ui(queue: Sequence[QueueItem], result: DuplicateResult, store: ReviewStore,
            states: Mapping[tuple[str, str], int], run: Path, reviewer: str,
            save: Callable[..., None], roots: tuple[Path, ...] = ()) -> None:
    """A page of pairs with tick boxes, and verdicts for every ticked pair in one step.

    A click judges the pairs that were ticked when the buttons were last shown, each bound to
    its state then (`states`, read before the queue): if another reviewer moved one on since,
    `save(action, message, pairs)` refuses the step naming it. "Duplicate" records each pair's
    own kind as the search found it, or the kind the reviewer picks; never a default.
    `roots`: the allowed roots a film added from outside the dataset may lie in.
    """
    last = st.session_state.get(_SHOWN) or {}
    pages = max(1, -(-len(queue) // PER_PAGE))
    c1, c2, c3, c4, c5 = st.columns([1.2, 1.6, 1.3, 1, 1.4], vertical_alignment="bottom")
    page = c1.selectbox("Page", range(1, pages + 1), key="dup_grid_page",
                        format_func=lambda n: f"{n} of {pages}")
    shown = list(queue[(page - 1) * PER_PAGE: page * PER_PAGE])
    if c5.button("Tick all on this page", key="dup_grid_all", width="stretch"):
        for item in shown:
            st.session_state[_tick_key(item)] = True
    choice = c2.selectbox("Kind", [DETECTED, *KINDS], format_func=_kind_label, key="dup_grid_kind",
                          help="What 'Duplicate' records: each pair's own kind as the duplicate "
                               "search found it, or one kind for every ticked pair.")
    ticked = [item for item in shown if st.session_state.get(_tick_key(item))]
    now = {"pairs": [(i.pair.a, i.pair.b) for i in ticked],
           "seen": {pair_key(i.pair.a, i.pair.b): states.get(pair_key(i.pair.a, i.pair.b), 0) for i in ticked},
           "kinds": grid_kinds(ticked, choice)}
    st.session_state[_SHOWN] = now
    was = last if "pairs" in last else now
    pairs, seen, kinds = was["pairs"], was["seen"], was["kinds"]
    common = {"reviewer": reviewer, "run": run.name, "threshold": result.rule.threshold,
              "only_pending": False, "note": "grid", "seen": seen}
    if c3.button(f"Duplicate ({len(ticked)})", key="dup_grid_dup", type="primary", disabled=not ticked,
                 width="stretch"):
        if isinstance(kinds, str):
            st.error(escape_markdown(kinds))
        else:
            by = _kind_label(choice) if choice != DETECTED else "each its own kind"
            save(lambda: store.record_many(pairs, "duplicate", kinds=kinds, **common),
                 f"{len(pairs)} pairs: duplicate ({by}).", pairs)
    if c4.button(f"Not dup. ({len(ticked)})", key="dup_grid_not", disabled=not ticked, width="stretch"):
        save(lambda: store.record_many(pairs, "not_duplicate", **common), f"{len(pairs)} pairs: not duplicate.",
             pairs)
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
