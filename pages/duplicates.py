"""Duplicates: find near-duplicate pairs, review them one by one, check the threshold, export."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import streamlit as st

from core.duplicates import DuplicateResult, load_calibration
from core.review import (
    KEEP_RULE,
    KIND_LABELS,
    SAME_FILM_KINDS,
    ReviewError,
    ReviewStore,
    groups_rows,
    image_facts,
    keep_one_per_group,
    keep_rows,
    pair_key,
    pending_exact,
    review_groups,
    review_queue,
    to_csv,
    to_json,
    verdict_check,
    verdict_rows,
)
from pages._duplicates_ui import (
    cached_result,
    filters_ui,
    histogram,
    images_ui,
    pair_table,
    reviewer_ui,
    search_ui,
    summary_ui,
    verdict_ui,
)
from pages._images_ui import escape_markdown
from pages._pair_evidence_ui import bulk_copies_ui, evidence_ui, found_kinds_ui
from pages._shared import flash, load_embeddings, synthetic_banner, workspace_ui


def review_ui(result: DuplicateResult, store: ReviewStore, run: Path, reviewer: str) -> None:
    """The queue: one pair at a time, verdict buttons, undo and bulk confirm.

    A click acts on what the last run of this page showed (kept in session state), bound to
    the state it was in: if another reviewer moved it on since, the store refuses with one
    line and the page shows the pair as it is now.
    """
    shown = st.session_state.get(_SHOWN) or {}
    current = store.current()
    f = replace(filters_ui(result), found_kinds=found_kinds_ui())
    c1, c2, _ = st.columns([1, 1, 2])
    exact = pending_exact(result.flagged, current)
    if c1.button(f"Confirm {len(exact)} exact copies", key="dup_bulk", disabled=not exact,
                 help="Pairs with identical pixels, as 'same image', in one step (undo undoes all)."):
        pairs = shown.get("exact", exact)
        _save(lambda: store.record_many(pairs, "duplicate", reviewer=reviewer, kind="same_image",
                                        note="bulk: identical pixels", run=run.name,
                                        threshold=result.rule.threshold, seen=shown.get("bulk")),
              f"Confirmed {len(pairs)} exact copies.")
    bulk_copies_ui(result, store, reviewer, run, current)
    if c2.button("Undo my last verdict", key="dup_undo", shortcut="U"):
        _save(lambda: store.undo_last(reviewer, seen=shown.get("undo")), "Undone.",
              empty="Nothing of yours to undo.")
    states = store.states()
    st.session_state[_SHOWN] = {"exact": exact, "undo": store.last_action(reviewer),
                                "bulk": {pair_key(a, b): states.get(pair_key(a, b), 0) for a, b in exact}}
    queue = review_queue(result.pairs, current, f)
    if not queue:
        st.success("No pair left with these filters.")
        return
    pos = min(int(st.session_state.get("dup_pos", 0)), len(queue) - 1)
    n1, n2, n3 = st.columns([1, 1, 4])
    if n1.button("Previous", key="dup_prev", shortcut="Left", disabled=pos == 0):
        pos -= 1
    if n2.button("Next", key="dup_next", shortcut="Right", disabled=pos >= len(queue) - 1):
        pos += 1
    st.session_state["dup_pos"] = pos
    n3.markdown(f"**Pair {pos + 1} of {len(queue)}**")
    item = queue[pos]
    pair_table(item, load_embeddings(run))
    if item.verdict is not None:
        v = item.verdict
        kind = f" ({KIND_LABELS.get(v.kind, v.kind)})" if v.kind else ""
        st.text(f"Current verdict: {v.verdict.replace('_', ' ')}{kind} by {v.reviewer}")
    seen_pair, seen_state = shown.get("pair"), shown.get("state")
    if seen_pair is None:
        seen_pair, seen_state = (item.pair.a, item.pair.b), states.get(pair_key(item.pair.a, item.pair.b), 0)
    choice = verdict_ui(f"{item.pair.a}|{item.pair.b}")  # if the pair moved on, refused below
    st.session_state[_SHOWN] = {**st.session_state[_SHOWN], "pair": (item.pair.a, item.pair.b),
                                "state": states.get(pair_key(item.pair.a, item.pair.b), 0)}
    if choice is not None:
        verdict, kind, note = choice
        if f.status != "pending":  # the pair stays in the queue: move on
            st.session_state["dup_pos"] = pos + 1
        _save(lambda: store.record(*seen_pair, verdict, reviewer=reviewer, kind=kind, note=note,
                                   run=run.name, threshold=result.rule.threshold, seen=seen_state),
              f"Saved: {verdict.replace('_', ' ')}.")
    evidence_ui(item, result.data_root)
    images_ui(item, result.data_root)
    with st.expander("History of this pair"):
        rows = verdict_rows(store.history(item.pair.a, item.pair.b))
        cols = ["time", "verdict", "kind", "note", "reviewer", "run", "threshold"]
        st.dataframe(pd.DataFrame(rows, columns=cols), hide_index=True, key="dup_history")


_SHOWN = "dup_shown"  # what the review desk showed last: pair and state, bulk list, last action


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
    check = verdict_check(result.pairs, store.current(), result.rule.threshold)
    c = st.columns(4)
    c[0].metric("Duplicate / not", f"{check.n_duplicate} / {check.n_not_duplicate}")
    c[1].metric("Precision at threshold", "—" if check.precision is None else f"{check.precision:.3f}")
    c[2].metric("Recall at threshold", "—" if check.recall is None else f"{check.recall:.3f}")
    s = check.suggested
    c[3].metric("Suggested threshold", "—" if s is None else f"{s.threshold:.4f}")
    if s is not None:
        st.caption(f"Lowest cosine reaching precision 0.99 on the verdicts: precision "
                   f"{s.precision:.3f}, recall {s.recall:.3f} of the confirmed duplicates"
                   f"{'' if s.reached else ' (0.99 not reachable: most precise shown)'}. Recall "
                   "counts reviewed pairs only; review near misses to see below the threshold.")
        if st.button("Search again with the suggested threshold", key="dup_apply"):
            from core.jobs.duplicates import start_search

            start_search(run, round(s.threshold, 6))
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
    """Downloads: verdicts, history, groups and the keep-one-per-group list."""
    current = store.current()
    verdicts = verdict_rows(current.values())
    c = st.columns(3)
    c[0].download_button("Verdicts (CSV)", to_csv(verdicts), "verdicts.csv", "text/csv", key="dup_dl_vcsv")
    c[1].download_button("Verdicts (JSON)", to_json(verdicts), "verdicts.json", "application/json",
                         key="dup_dl_vjson")
    c[2].download_button("Full history (CSV)", to_csv(verdict_rows(store.history())), "history.csv",
                         "text/csv", key="dup_dl_hist")
    pending = st.checkbox("Include flagged pairs nobody has rejected yet", value=True, key="dup_dl_pending")
    groups = review_groups([(p.a, p.b) for p in result.flagged], current, include_pending=pending)
    c = st.columns(3)
    c[0].download_button("Groups (CSV)", to_csv(groups_rows(groups)), "groups.csv", "text/csv",
                         key="dup_dl_gcsv")
    c[1].download_button("Groups (JSON)", to_json([vars(g) for g in groups]), "groups.json",
                         "application/json", key="dup_dl_gjson")
    copies = review_groups([(p.a, p.b) for p in result.flagged], current, include_pending=pending,
                           kinds=SAME_FILM_KINDS)
    facts = image_facts(result.data_root, {m for g in copies for m in g.members})
    c[2].download_button("Keep one per group (CSV)", to_csv(keep_rows(keep_one_per_group(copies, facts))),
                         "keep_one_per_group.csv", "text/csv", key="dup_dl_keep")
    st.caption(f"{len(groups)} groups. Keep list rule: {KEEP_RULE}. Pairs judged 'same patient, "
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
tab_review, tab_cal, tab_leak, tab_export = st.tabs(["Review", "Calibration", "Leakage", "Export"])
with tab_review:
    if not reviewer:
        st.warning("Enter your name in the sidebar to give verdicts.")
    else:
        review_ui(result, store, run, reviewer)
with tab_cal:
    calibration_ui(result, store, run)
with tab_leak:
    leakage_ui(result)
with tab_export:
    export_ui(result, store)
