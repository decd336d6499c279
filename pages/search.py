"""Search by example: upload an X-ray (PNG, JPEG, DICOM) or pick one, browse its nearest neighbours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.data import ImageReadError, Window, dataset_file, load_image, preview
from core.runs import (
    DUPLICATES_FILE,
    DuplicateThreshold,
    TimedHits,
    duplicate_threshold,
    hits_csv,
    label_vote,
    timed_search,
)
from pages._images_ui import GridItem, escape_markdown, image_grid
from pages._search_ui import QueryError, QueryImage, query_source_ui, tags_ui, window_ui
from pages._shared import get_searcher, load_embeddings, synthetic_banner, workspace_ui

COMPARE_PX = 440  # side by side, each fits half of a laptop screen
_RESULTS = "search_results"  # session cache: (run, query, window, k) -> TimedHits


@st.cache_data(max_entries=8, show_spinner=False)
def _threshold(run_dir: str, stamp: float) -> DuplicateThreshold:
    return duplicate_threshold(run_dir)


def threshold_of(run_dir: Path) -> DuplicateThreshold:
    """The run's duplicate threshold, re-read when its duplicate search is redone."""
    try:
        stamp = (run_dir / DUPLICATES_FILE).stat().st_mtime
    except OSError:
        stamp = 0.0
    return _threshold(str(run_dir), stamp)


def search(run_dir: Path, query: QueryImage, pixels: np.ndarray, window: Window | None,
           k: int) -> TimedHits:
    """Results of the query, computed once per (run, image, window, k) in this session."""
    key = (str(run_dir), query.digest, repr(window), k)
    cached = st.session_state.get(_RESULTS)
    if cached is None or cached[0] != key:
        cached = (key, timed_search(get_searcher(run_dir), pixels, k))
        st.session_state[_RESULTS] = cached
    return cached[1]


def warning_ui(result: TimedHits, threshold: DuplicateThreshold) -> None:
    """'Likely the same radiograph' when the best match reaches the duplicate threshold."""
    if result.hits and result.hits[0].score >= threshold.value:
        st.warning(f"Likely the same radiograph: the best match has cosine {result.hits[0].score:.3f}, "
                   f"at or above the duplicate threshold {threshold.value:.3f}.",
                   icon=":material/content_copy:")
    source = {"calibrated": "calibrated by the duplicate search",
              "fixed": "chosen in the duplicate search",
              "default": "default; a duplicate search on the Duplicates page calibrates it"}
    st.caption(f"Duplicate threshold {threshold.value:.3f} ({source[threshold.source]}).")


def vote_ui(result: TimedHits) -> None:
    """The labels of the top-k, most frequent first."""
    votes = label_vote(result.hits)
    if not votes:
        return
    st.markdown(f"**Label vote of the top {len(result.hits)}**")
    st.dataframe(pd.DataFrame([{"label": v.label, "votes": v.count, "share": v.fraction}
                               for v in votes]),
                 hide_index=True, key="search_vote",
                 column_config={"share": st.column_config.ProgressColumn(format="percent",
                                                                         min_value=0, max_value=1)})


def compare_ui(query: QueryImage, pixels: np.ndarray, result: TimedHits, data_root: Path) -> None:
    """The query beside a result the user picks."""
    ranks = [h.rank for h in result.hits]
    by_rank = {h.rank: h for h in result.hits}
    rank = st.selectbox("Compare the query with result", ranks, key="search_compare",
                        format_func=lambda r: f"#{r} · {Path(by_rank[r].path).name}")
    hit = by_rank[rank]
    left, right = st.columns(2)
    with left:
        st.image(preview(pixels), width=COMPARE_PX)
        st.text(f"query: {query.name}")
    with right:
        try:
            shown = load_image(dataset_file(data_root, hit.path)).pixels
            st.image(preview(shown), width=COMPARE_PX)
        except ImageReadError as e:
            st.error(escape_markdown(str(e)))
        st.text(f"#{hit.rank} · cosine {hit.score:.3f} · {hit.label}\n{hit.path}")


ws = workspace_ui()
st.title("Search by example")
synthetic_banner(ws)
run_dir = ws.active_run
if run_dir is None:
    st.info("No trained model yet: train one on the Train page (the demo model trains by itself "
            "on first start).")
    st.stop()
st.caption(f"Model: {escape_markdown(run_dir.name)} (change it in the sidebar)")
emb = load_embeddings(run_dir)
data_root = get_searcher(run_dir).data_root

query = query_source_ui(emb, data_root)
if query is None:
    st.stop()
if isinstance(query, QueryError):
    st.error(escape_markdown(query.message), icon=":material/broken_image:")
    st.stop()

query_col, results_col = st.columns([1, 3])
with query_col:
    st.subheader("Query")
    pixels, window = window_ui(query)
    st.image(preview(pixels), width="stretch")
    st.text(query.name)
    tags_ui(query.image.meta)
    k = st.slider("Results (k)", 1, min(50, len(emb)), min(10, len(emb)), key="search_k")

result = search(run_dir, query, pixels, window, k)
with results_col:
    st.subheader(f"Top {len(result.hits)} of {len(emb)} images")
    st.caption(f"Query time {result.seconds * 1000:.0f} ms (embedding + search)")
    warning_ui(result, threshold_of(run_dir))
    image_grid([GridItem(h.path, h.label, f"#{h.rank} · cosine {h.score:.3f}") for h in result.hits],
               data_root, run_dir, columns=5)
    vote_ui(result)
    st.download_button("Download results (CSV)", hits_csv(result.hits, query.name),
                       file_name="search-results.csv", mime="text/csv", key="search_csv")

st.subheader("Compare")
compare_ui(query, pixels, result, data_root)
