"""Duplicates: find near-duplicate pairs, review them (one by one or as a grid), check the threshold, export.

One section shows at a time (a segmented control kept in session state, not st.tabs): the
review's keyboard shortcuts exist only while the Review section is on screen, and a download
or a verdict never sends the reviewer back to another section.
"""

from __future__ import annotations

from pages._routing import route_through_entry_point

route_through_entry_point()  # before the imports below, which load torch (seconds)

from pathlib import Path

import pandas as pd
import streamlit as st

from core.data import allowed_roots
from core.data.patient_ids import display_patient
from core.duplicates import DuplicateResult, load_calibration
from core.embed import Embeddings
from core.review import (
    KEEP_RULE,
    ReviewError,
    ReviewStore,
    StaleVerdict,
    pair_key,
    pending_exact,
    review_downloads,
    review_queue,
    suggest_threshold,
    verdict_check,
    verdict_rows,
    verdict_scores,
)
from core.run_folder import RunError
from pages._duplicates_ui import (
    cached_result,
    filters_ui,
    histogram,
    images_ui,
    pair_facts,
    pair_table,
    reviewer_ui,
    search_ui,
    stale_pair_message,
    stale_pairs_message,
    summary_ui,
    verdict_ui,
)
from pages._images_ui import escape_markdown
from pages._pair_evidence_ui import bulk_copies_ui, evidence_ui
from pages._review_grid_ui import grid_ui
from pages._shared import (
    compact_banners,
    flash,
    load_embeddings,
    no_model_note,
    patient_names_key,
    synthetic_banner,
    workspace_ui,
)

SECTIONS = ["Review", "Calibration", "Leakage", "Export"]
_SHOWN = "dup_shown"  # what the review desk showed last: pair and state, bulk list, last action


def review_ui(result: DuplicateResult, store: ReviewStore, run: Path, reviewer: str,
              roots: tuple[Path, ...]) -> None:
    """The queue: one pair at a time (films and scores on one screen) or a grid; undo, bulk confirm.

    One row of controls (filters, grid switch, bulk confirms, undo), then the films with the
    scores and verdicts beside them: at 1280 x 720 both films and the cosine show without
    scrolling. The last action's message shows beside the films, so the desk does not move; a
    refused verdict shows at the top of the desk (and as a toast), where the reviewer looks.

    A click acts on what the last run of this page showed (kept in session state), bound to
    the state it was in: if another reviewer moved it on since, the store refuses with one
    line and the page shows the pair as it is now. Films are opened inside the dataset folder
    and, for films added from elsewhere, the allowed `roots` only.
    """
    notice = st.container()  # a refusal goes here: above the films, never below the fold
    shown = st.session_state.get(_SHOWN) or {}
    states = store.states()  # read first: a change after it makes a click stale, never unseen
    current = store.current()
    save_bulk = _bulk_saver(store, notice)
    box, switch, c1, c2, c3 = st.columns([2.1, 1.0, 1.4, 1.4, 1.3], vertical_alignment="center")
    f, grid = filters_ui(result, box, switch)
    queue = review_queue(result.pairs, current, f, groups=result.groups)
    exact = pending_exact(result.flagged, current)
    if c1.button(f"Confirm {len(exact)} exact", key="dup_bulk", disabled=not exact, width="stretch",
                 help="Pairs with identical pixels, as 'same image', in one step (undo undoes all)."):
        pairs = shown.get("exact", exact)
        save_bulk(lambda: store.record_many(pairs, "duplicate", reviewer=reviewer, kind="same_image",
                                            note="bulk: identical pixels", run=run.name,
                                            threshold=result.rule.threshold, seen=shown.get("bulk", {})),
                  f"Confirmed {len(pairs)} exact copies.", pairs)
    with c2:
        copies = bulk_copies_ui(result, store, reviewer, run, current, shown, save_bulk)
    if c3.button("Undo my last", key="dup_undo", shortcut="U", width="stretch"):
        _save(lambda: store.undo_last(reviewer, seen=shown.get("undo")), "Undone.",
              empty="Nothing of yours to undo.", where=notice)
    st.session_state[_SHOWN] = {"exact": exact, "copies": copies, "undo": store.last_action(reviewer),
                                "bulk": {pair_key(a, b): states.get(pair_key(a, b), 0)
                                         for a, b in [*exact, *copies]}}
    if not queue:
        flash()
        st.success("No pair left with these filters.")
        return
    if grid:
        flash()
        grid_ui(queue, result, store, states, run, reviewer, save_bulk, roots)
        return
    pos = min(int(st.session_state.get("dup_pos", 0)), len(queue) - 1)
    item = queue[pos]
    seen_pair, seen_state = shown.get("pair"), shown.get("state")
    if seen_pair is None:
        seen_pair, seen_state = (item.pair.a, item.pair.b), states.get(pair_key(item.pair.a, item.pair.b), 0)
    films, side = st.columns([2.8, 1.7])  # the side holds the six verdicts, two a row
    with side:
        n1, n2 = st.columns(2)
        if n1.button("◀ Prev", key="dup_prev", shortcut="Left", disabled=pos == 0, width="stretch"):
            st.session_state["dup_pos"] = pos - 1
            st.rerun()
        if n2.button("Next ▶", key="dup_next", shortcut="Right", disabled=pos >= len(queue) - 1,
                     width="stretch"):
            st.session_state["dup_pos"] = pos + 1
            st.rerun()
        flash()
        st.markdown(f"**Pair {pos + 1} of {len(queue)}**")
        pair_facts(item)
        choice = verdict_ui(f"{item.pair.a}|{item.pair.b}")  # if the pair moved on, refused below
    st.session_state[_SHOWN] = {**st.session_state[_SHOWN], "pair": (item.pair.a, item.pair.b),
                                "state": states.get(pair_key(item.pair.a, item.pair.b), 0)}
    if choice is not None:
        verdict, kind, note = choice
        if f.status != "pending":  # the pair stays in the queue: move on
            st.session_state["dup_pos"] = pos + 1
        _save(lambda: store.record(*seen_pair, verdict, reviewer=reviewer, kind=kind, note=note,
                                   run=run.name, threshold=result.rule.threshold, seen=seen_state),
              f"Saved: {verdict.replace('_', ' ')}.",
              stale=lambda e: stale_pair_message(store.history(*seen_pair), tuple(seen_pair),
                                               tuple(seen_pair) == (item.pair.a, item.pair.b)),
              where=notice)
    with films:
        images_ui(item, result.data_root, roots)
    evidence_ui(item, result.data_root, roots)
    pair_table(item, load_embeddings(run), patient_names_key(ws))
    with st.expander("History of this pair"):
        rows = verdict_rows(store.history(item.pair.a, item.pair.b))
        cols = ["time", "verdict", "kind", "note", "reviewer", "run", "threshold"]
        st.dataframe(pd.DataFrame(rows, columns=cols), hide_index=True, key="dup_history")


def _save(action, message: str, empty: str | None = None, stale=None, where=None) -> None:
    """Run a store action; flash `message` (or `empty` when it wrote nothing) and rerun. A
    refusal is one line: `stale(e)`'s account of what changed, where given, for a stale verdict;
    it is drawn in `where` (the top of the desk) and shown as a toast too."""
    try:
        done = action()
    except StaleVerdict as e:
        _refuse(stale(e) if stale is not None else str(e), where)
        return
    except ReviewError as e:
        _refuse(str(e), where)
        return
    flash(empty if empty is not None and not done else message)
    st.rerun()


def _refuse(message: str, where=None) -> None:
    """A refusal in `where` (the top of the desk; else here) and as a toast: a keyboard
    reviewer sees that the verdict was dropped while the desk moves on."""
    text = escape_markdown(message)
    (where if where is not None else st).error(text, icon=":material/block:")
    st.toast(text, icon=":material/block:")


def _bulk_saver(store: ReviewStore, where=None):
    """`save(action, message, pairs)` for a bulk verdict on `pairs` (as shown): a refusal names
    the shown pairs that changed since, and who changed each (drawn in `where`)."""
    def save(action, message: str, pairs) -> None:
        _save(action, message, stale=lambda e: stale_pairs_message(
            {key: store.history(*key) for key in e.changed}, len(pairs)), where=where)
    return save


def calibration_ui(result: DuplicateResult, store: ReviewStore, run: Path) -> None:
    """The auto calibration (estimates, histograms) and the check against reviewers' verdicts."""
    cal = load_calibration(run)
    if cal:
        st.subheader("Calibrated on synthetic copies")
        rules = cal.rules()
        rows = [{"detector": name, "rule": rules[name].describe(symbols=True),
                 "precision": c.precision, "recall": c.recall, "target reached": c.reached}
                for name, c in cal.choices().items()]
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="dup_cal_table")
        k = cal.known
        st.caption(f"{len(k.originals)} held-out images, {k.pos_score.size} copies "
                   f"({', '.join(cal.recall_by_kind)}), {k.neg_score.size} nearest "
                   f"non-duplicates; target precision {cal.target}.")
        st.dataframe(pd.DataFrame([cal.recall_by_kind]), hide_index=True, key="dup_cal_kinds")
        c1, c2 = st.columns(2)
        c1.plotly_chart(histogram(k.pos_score.tolist(), k.neg_score.tolist(), result.rule.threshold,
                                  "Cosine: copies vs nearest non-duplicates"), key="dup_hist_cos")
        c2.plotly_chart(histogram(k.pos_hash.tolist(), k.neg_hash.tolist(), result.rule.hash_threshold + 0.5,
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
               + (f"over resampled verdicts {s.low:.4f}–{s.high:.4f}" if s.low is not None and s.high is not None
                  else "not available (too few verdicts to resample)")
               + ". Recall counts reviewed pairs only; "
               "review near misses to see below the threshold.")
    if st.button("Search again with the suggested threshold", key="dup_apply"):
        from core.jobs import start_search

        start_search(run, round(ch.threshold, 6))
        st.rerun()


def leakage_ui(result: DuplicateResult, emb: Embeddings, key: bytes) -> None:
    """Duplicates across splits (with the split of each side) and patients in more than one
    split (by their keyed names, `display_patient`, never their ids)."""
    leak = result.leakage
    st.metric("Flagged pairs across splits", len(leak.cross_split_pairs))
    if leak.cross_split_pairs:
        def split(row: int) -> str:
            return emb.splits[row] if 0 <= row < len(emb) else ""

        st.dataframe(pd.DataFrame([{"a": p.a, "split a": split(p.i), "b": p.b, "split b": split(p.j),
                                    "cosine": round(p.score, 4), "pHash": p.hash_distance}
                                   for p in leak.cross_split_pairs]),
                     hide_index=True, key="dup_leak_pairs")
    st.metric("Patients in more than one split", leak.n_patients_across_splits)
    if leak.patient_leaks:
        st.dataframe(pd.DataFrame([{**vars(x), "patient": display_patient(x.patient, key)}
                                   for x in leak.patient_leaks]), hide_index=True,
                     key="dup_leak_patients")


def export_ui(result: DuplicateResult, store: ReviewStore, roots: tuple[Path, ...]) -> None:
    """Downloads (no rerun on click: the page stays where it is); the keep list reads image
    sizes inside the dataset folder and the allowed `roots` only."""
    pending = st.checkbox("Include flagged pairs nobody has rejected yet", value=True, key="dup_dl_pending")
    files = review_downloads(result.flagged, store.current(), store.history(), result.data_root,
                             include_pending=pending, roots=roots)
    for row in (files.verdicts, files.groups):
        for col, d in zip(st.columns(3), row, strict=True):
            col.download_button(d.label, d.data, d.file_name, d.mime, on_click="ignore",
                                key=f"dup_dl_{d.file_name}")
    st.caption(f"{files.n_groups} groups. Keep list rule: {KEEP_RULE}. Pairs judged 'same patient, "
               "other study' are not copies and are not in the keep list.")


# A compact header (title, sections and "Search again" on one row, the notes in one caption)
# leaves the review desk's films and scores on screen at 1280 x 720.
title_col, section_col, search_col = st.columns([1.3, 2.4, 1.1], vertical_alignment="center")
title_col.title("Duplicates", anchor=False)
ws = workspace_ui()
reviewer = reviewer_ui()
run = ws.active_run
if run is None:
    synthetic_banner(ws)
    flash()
    st.info(no_model_note(ws) if ws.dataset_path is None
            else "No trained model yet: train one on the Train page, then look for duplicates here.")
    st.stop()
compact_banners(ws, run)
try:
    result = cached_result(run)
except RunError as e:  # damaged duplicates.json: one line, and the search to write it again
    st.error(escape_markdown(str(e)))
    search_ui(run)
    st.stop()
searching = search_ui(run, search_col if result is not None else None)
if result is None:
    flash()
    if not searching:  # the box with the button is open (it opens itself while there is no result)
        st.info("No duplicate search for this model yet: choose a threshold and press 'Find duplicates' above.")
    st.stop()
summary_ui(result)
try:
    store = ReviewStore(ws.reviews_db, dataset=str(result.data_root))
except ReviewError as e:
    st.error(escape_markdown(str(e)))
    st.stop()
roots = allowed_roots(ws.root)  # films `add` took from other folders are opened inside these only
section = section_col.segmented_control("Section", SECTIONS, default="Review", key="dup_section",
                                        label_visibility="collapsed") or "Review"
if section != "Review" or not reviewer:
    flash()
if section == "Review":
    if not reviewer:
        st.warning("Enter your name in the sidebar to give verdicts.")
    else:
        review_ui(result, store, run, reviewer, roots)
elif section == "Calibration":
    calibration_ui(result, store, run)
elif section == "Leakage":
    leakage_ui(result, load_embeddings(run), patient_names_key(ws))
else:
    export_ui(result, store, roots)
