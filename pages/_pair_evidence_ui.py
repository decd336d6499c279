"""Why a pair was flagged: its kind and geometric evidence, a filter by kind, and the bulk
confirm of verified copies. Pictures come from `core.review.pair_evidence` (no image code here).
File names are user data: shown only as plain text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from core.data import ImageReadError, dataset_file, load_image
from core.duplicates import PAIR_KINDS
from core.review import pair_evidence, pending_copies

if TYPE_CHECKING:
    from core.duplicates.search import DuplicateResult
    from core.review.queue import QueueItem
    from core.review.store import ReviewStore

KIND_HELP = {"exact": "identical pixels", "copy": "the same film, transformed (verified by geometry)",
             "similar": "close in the embedding, not the same film", "same_patient": "one patient, another film",
             "": "near miss (not flagged)"}


def found_kinds_ui() -> tuple[str, ...]:
    """The search's kinds to show (empty: all)."""
    return tuple(st.multiselect("Kind found by the search", PAIR_KINDS, key="dup_found_kinds",
                                help="exact: same pixels; copy: verified by geometry; similar: close "
                                     "but not the same film; same_patient: patient ids say so."))


def bulk_copies_ui(result: DuplicateResult, store: ReviewStore, reviewer: str, run: Path,
                   current: dict, shown: dict, save: Callable[..., None]) -> list[tuple[str, str]]:
    """One button that confirms every pending verified copy as kind 'copy' (undo takes all back).

    A click confirms the copies the button counted when it was shown (`shown['copies']`, each
    bound to its state then, `shown['bulk']`): a pair another reviewer decided or undid since
    refuses the whole step, named; a pair that became pending since is not in it.

    Returns:
        The pending copies the button counts now (what the page records as shown).
    """
    copies = pending_copies(result.flagged, current)
    rule = result.verify_rule
    if st.button(f"Confirm {len(copies)} copies", key="dup_bulk_copies", disabled=not copies,
                 width="stretch", help=f"Verified copies, as kind 'copy', in one step (undo undoes "
                                       f"all): pairs the geometric check calls the same film "
                                       f"({rule.describe()})."):
        pairs = shown.get("copies", copies)
        save(lambda: store.record_many(pairs, "duplicate", reviewer=reviewer, kind="copy",
                                       note="bulk: verified copies", run=run.name,
                                       threshold=result.rule.threshold, seen=shown.get("bulk", {})),
             f"Confirmed {len(pairs)} copies.", pairs)
    return copies


@st.cache_data(max_entries=16, show_spinner="Aligning the pair...")
def _evidence(file_a: str, file_b: str, stamp: tuple[float, float]):
    return pair_evidence(load_image(file_a).pixels, load_image(file_b).pixels)


def evidence_ui(item: QueueItem, data_root: Path, roots: tuple[Path, ...]) -> None:
    """Kind, cosine, hash distance, inliers, then the aligned overlay, difference and matches.

    Both films are opened through `dataset_file` (the dataset folder, or for a film added from
    elsewhere the allowed `roots`), as the main panel opens them: one outside is named, not shown.
    """
    p = item.pair
    cols = st.columns(4)
    cols[0].metric("Kind", p.kind or "near miss", help=KIND_HELP.get(p.kind, ""))
    cols[1].metric("Cosine", f"{p.score:.4f}")
    cols[2].metric("pHash distance", f"{p.hash_distance}/64")
    cols[3].metric("Inliers", "not checked" if p.inliers is None else str(p.inliers),
                   help="Keypoint matches that agree on one rotation, scale and shift"
                        + ("" if p.agreement is None else f"; aligned agreement {p.agreement:.2f}"))
    with st.expander("Why: the second image aligned onto the first", expanded=p.kind == "copy"):
        try:
            fa, fb = dataset_file(data_root, p.a, roots), dataset_file(data_root, p.b, roots)
            ev = _evidence(str(fa), str(fb), (fa.stat().st_mtime, fb.stat().st_mtime))
        except (OSError, ValueError, ImageReadError) as e:
            st.error(f"Cannot align this pair: {str(e).splitlines()[0]}")
            return
        if ev.overlay is None:
            st.info("No rotation, scale and shift maps one image onto the other: not the same film.")
        else:
            left, right = st.columns(2)
            left.image(ev.overlay, caption="Aligned overlay: A red, B cyan; grey where they agree",
                       width="stretch")
            right.image(ev.difference, caption="Difference after alignment (grey levels matched)",
                        width="stretch")
        st.image(ev.matches, caption=f"{ev.inliers} inlier matches (A left, B right)", width="stretch")
