"""Duplicates: find near-duplicate pairs, review them (one by one or as a grid), check the threshold, export.

One section shows at a time (a segmented control kept in session state, not st.tabs): the
review's keyboard shortcuts exist only while the Review section is on screen, and a download
or a verdict never sends the reviewer back to another section.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core.duplicates import DuplicateResult, detector_text, load_calibration
from core.review import (
    KEEP_RULE,
    ReviewError,
    ReviewStore,
    pending_exact,
    review_downloads,
    review_queue,
    suggest_threshold,
    verdict_check,
    verdict_rows,
    verdict_scores,
)
from pages._duplicates_ui import (
    cached_result,
    filters_ui,
    histogram,
    images_ui,
    pair_facts,
    pair_table,
    reviewer_ui,
    search_ui,
    summary_ui,
    verdict_ui,
)
from pages._images_ui import escape_markdown
from pages._review_grid_ui import grid_ui
from pages._shared import flash, load_embeddings, model_banner, synthetic_banner, workspace_ui

SECTIONS = ["Review", "Calibration", "Leakage", "Export"]


def review_ui(result: DuplicateResult, store: ReviewStore, run: Path, reviewer: str) -> None:
    """The queue: one pair at a time (films and scores on one screen) or a grid; undo, bulk confirm."""
    current = store.current()
    f, grid = filters_ui(result)
    queue = review_queue(result.pairs, current, f, groups=result.groups)
    exact = pending_exact(result.flagged, current)
    c1, c2, c3 = st.columns([1.3, 1, 2.7], vertical_alignment="center")
    if c1.button(f"Confirm {len(exact)} exact copies", key="dup_bulk", disabled=not exact,
                 help="Pairs with identical pixels, as 'same image', in one step (undo undoes all)."):
        _save(lambda: store.record_many(exact, "duplicate", reviewer=reviewer, kind="same_image",
                                        note="bulk: identical pixels", run=run.name,
                                        threshold=result.rule.threshold),
              f"Confirmed {len(exact)} exact copies.")
    if c2.button("Undo my last", key="dup_undo", shortcut="U"):
        _save(lambda: store.undo_last(reviewer), "Undone.", empty="Nothing of yours to undo.")
    if not queue:
        st.success("No pair left with these filters.")
        return
    if grid:
        grid_ui(queue, result, store, run, reviewer, _save)
        return
    pos = min(int(st.session_state.get("dup_pos", 0)), len(queue) - 1)
    item = queue[pos]
    films, side = st.columns([3.2, 1.3])
    with side:
        n1, n2 = st.columns(2)
        if n1.button("◀ Prev", key="dup_prev", shortcut="Left", disabled=pos == 0, width="stretch"):
            st.session_state["dup_pos"] = pos - 1
            st.rerun()
        if n2.button("Next ▶", key="dup_next", shortcut="Right", disabled=pos >= len(queue) - 1,
                     width="stretch"):
            st.session_state["dup_pos"] = pos + 1
            st.rerun()
        st.markdown(f"**Pair {pos + 1} of {len(queue)}**")
        pair_facts(item)
        choice = verdict_ui(f"{item.pair.a}|{item.pair.b}")
    c3.caption(escape_markdown(f"Reviewing as {reviewer}"))
    if choice is not None:
        verdict, kind, note = choice
        if f.status != "pending":  # the pair stays in the queue: move on
            st.session_state["dup_pos"] = pos + 1
        _save(lambda: store.record(item.pair.a, item.pair.b, verdict, reviewer=reviewer, kind=kind,
                                   note=note, run=run.name, threshold=result.rule.threshold),
              f"Saved: {verdict.replace('_', ' ')}.")
    with films:
        images_ui(item, result.data_root)
    pair_table(item, load_embeddings(run))
    with st.expander("History of this pair"):
        rows = verdict_rows(store.history(item.pair.a, item.pair.b))
        cols = ["time", "verdict", "kind", "note", "reviewer", "run", "threshold"]
        st.dataframe(pd.DataFrame(rows, columns=cols), hide_index=True, key="dup_history")


def _save(action, message: str, empty: str | None = None) -> None:
    try:
        done = action()
    except ReviewError as e:
        st.error(escape_markdown(str(e)))
        return
    flash(empty if empty is not None and not done else message)
    st.rerun()


def calibration_ui(result: DuplicateResult, store: ReviewStore, run: Path) -> None:
    """The auto calibration (estimates, histograms) and the check against reviewers' verdicts."""
    cal = load_calibration(run)
    if cal:
        st.subheader("Calibrated on synthetic copies")
        rows = [{"detector": name, "rule": detector_text(name, cal[name]),
                 "precision": cal[name]["precision"], "recall": cal[name]["recall"],
                 "target reached": cal[name]["reached"]} for name in ("combined", "embedding", "hash")]
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="dup_cal_table")
        st.caption(f"{cal['n_originals']} held-out images, {cal['n_positive']} copies "
                   f"({', '.join(cal['recall_by_kind'])}), {cal['n_negative']} nearest "
                   f"non-duplicates; target precision {cal['target_precision']}.")
        st.dataframe(pd.DataFrame([cal["recall_by_kind"]]), hide_index=True, key="dup_cal_kinds")
        k = cal["pairs"]
        c1, c2 = st.columns(2)
        c1.plotly_chart(histogram(k["pos_score"], k["neg_score"], result.rule.threshold,
                                  "Cosine: copies vs nearest non-duplicates"), key="dup_hist_cos")
        c2.plotly_chart(histogram(k["pos_hash"], k["neg_hash"], result.rule.hash_threshold + 0.5,
                                  "pHash distance", x_title="bits"), key="dup_hist_hash")
    else:
        st.info("No auto calibration in this run yet: run the search with the 'auto' threshold.")
    st.subheader("Against reviewers' verdicts")
    current = store.current()
    check = verdict_check(result.pairs, current, result.rule.threshold)
    s = suggest_threshold(check, *verdict_scores(result.pairs, current))
    c = st.columns(4)
    c[0].metric("Duplicate / not", f"{check.n_duplicate} / {check.n_not_duplicate}")
    c[1].metric("Precision at threshold", "—" if check.precision is None else f"{check.precision:.3f}")
    c[2].metric("Recall at threshold", "—" if check.recall is None else f"{check.recall:.3f}")
    c[3].metric("Suggested threshold", "—" if s.choice is None else f"{s.choice.threshold:.4f}")
    if s.choice is None:
        st.caption(s.missing)
        return
    ch = s.choice
    st.caption(f"Lowest cosine reaching precision 0.99 on the verdicts: precision {ch.precision:.3f}, "
               f"recall {ch.recall:.3f} of the confirmed duplicates"
               f"{'' if ch.reached else ' (0.99 not reachable: most precise shown)'}; 90% interval "
               f"over resampled verdicts {s.low:.4f}–{s.high:.4f}. Recall counts reviewed pairs only; "
               "review near misses to see below the threshold.")
    if st.button("Search again with the suggested threshold", key="dup_apply"):
        from core.jobs import start_search

        start_search(run, round(ch.threshold, 6))
        st.rerun()


def leakage_ui(result: DuplicateResult) -> None:
    """Duplicates across splits and patients in more than one split."""
    leak = result.leakage
    st.metric("Flagged pairs across splits", len(leak.cross_split_pairs))
    if leak.cross_split_pairs:
        st.dataframe(pd.DataFrame([{"a": p.a, "b": p.b, "cosine": round(p.score, 4),
                                    "pHash": p.hash_distance} for p in leak.cross_split_pairs]),
                     hide_index=True, key="dup_leak_pairs")
    st.metric("Patients in more than one split", leak.n_patients_across_splits)
    if leak.patient_leaks:
        st.dataframe(pd.DataFrame([vars(x) for x in leak.patient_leaks]), hide_index=True,
                     key="dup_leak_patients")


def export_ui(result: DuplicateResult, store: ReviewStore) -> None:
    """Downloads (no rerun on click: the page stays where it is)."""
    pending = st.checkbox("Include flagged pairs nobody has rejected yet", value=True, key="dup_dl_pending")
    files = review_downloads(result.flagged, store.current(), store.history(), result.data_root,
                             include_pending=pending)
    for row in (files.verdicts, files.groups):
        for col, d in zip(st.columns(3), row, strict=True):
            col.download_button(d.label, d.data, d.file_name, d.mime, on_click="ignore",
                                key=f"dup_dl_{d.file_name}")
    st.caption(f"{files.n_groups} groups. Keep list rule: {KEEP_RULE}. Pairs judged 'same patient, "
               "other study' are not copies and are not in the keep list.")


st.title("Duplicates")
ws = workspace_ui()
reviewer = reviewer_ui()
synthetic_banner(ws)
flash()
run = ws.active_run
if run is None:
    st.info("No trained model yet: train one on the Train page, then look for duplicates here.")
    st.stop()
model_banner(ws, run)
search_ui(run)
result = cached_result(run)
if result is None:
    st.info("No duplicate search for this model yet: open 'Find duplicates' above.")
    st.stop()
summary_ui(result)
try:
    store = ReviewStore(ws.reviews_db, dataset=str(result.data_root))
except ReviewError as e:
    st.error(escape_markdown(str(e)))
    st.stop()
section = st.segmented_control("Section", SECTIONS, default="Review", key="dup_section",
                               label_visibility="collapsed") or "Review"
if section == "Review":
    if not reviewer:
        st.warning("Enter your name in the sidebar to give verdicts.")
    else:
        review_ui(result, store, run, reviewer)
elif section == "Calibration":
    calibration_ui(result, store, run)
elif section == "Leakage":
    leakage_ui(result)
else:
    export_ui(result, store)
