"""Search by example: upload an X-ray (PNG, JPEG, DICOM) or pick one, browse its nearest neighbours."""

from __future__ import annotations

from pages._routing import route_through_entry_point

route_through_entry_point()  # before the imports below, which load torch (seconds)

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.data import ImageReadError, Window, allowed_roots, dataset_file, load_image, preview
from core.data.patient_ids import display_patient
from core.duplicates import CopyMatch, copy_rule, find_copy
from core.files import file_stamp
from core.retrieval import (
    Familiarity,
    Hit,
    SamePatientPrior,
    ScoreProfile,
    TimedHits,
    familiarity_of,
    same_patient_note,
    score_profile,
    timed_prior_search,
    timed_search,
)
from core.run_folder import RunPaths
from core.runs import hits_csv, label_vote
from pages._images_ui import GridItem, escape_markdown, image_grid
from pages._search_ui import (
    QueryError,
    QueryImage,
    hide_patient_ui,
    patients_caption_text,
    priors_ui,
    query_source_ui,
    tags_ui,
    window_ui,
)
from pages._shared import (
    get_searcher,
    load_embeddings,
    model_banner,
    no_model_note,
    patient_names_key,
    synthetic_banner,
    workspace_ui,
)

COMPARE_PX = 440  # side by side, each fits half of a laptop screen
RESULT_PX = 160  # a result thumbnail: four to a row beside the query at 1280 px
_RESULTS = "search_results"  # session cache: (run, query, window, k, hidden patient) -> Answer


@dataclass(frozen=True)
class Answer:
    """One query's results, the copy check, and its best match read against the dataset."""

    result: TimedHits
    copy: CopyMatch | None
    familiar: Familiarity | None



@st.cache_data(max_entries=8, show_spinner="Measuring this dataset's own nearest-neighbour scores…")
def _profile(run_dir: str, stamp: float) -> ScoreProfile:
    return score_profile(run_dir, load_embeddings(Path(run_dir)).vectors)


def profile_of(run_dir: Path) -> ScoreProfile:
    """The run's best-match distribution (computed once per run, kept in the run folder)."""
    return _profile(str(run_dir), file_stamp(RunPaths(run_dir).embeddings))  # the served set's


def search(run_dir: Path, data_root: Path, query: QueryImage, pixels: np.ndarray,
           window: Window | None, k: int, hide_patient: str | None, priors: bool) -> Answer:
    """Results of the query, computed once per (run, image, window, k, hidden patient, ranking)
    in this session. `priors`: rank the nearest films by the landmarks they share with the query."""
    dup_stamp = file_stamp(RunPaths(run_dir, generation=None).duplicates)
    key = (str(run_dir), query.digest, query.dataset_path, repr(window), k, hide_patient, priors, dup_stamp)
    cached = st.session_state.get(_RESULTS)
    if cached is None or cached[0] != key:
        find = timed_prior_search if priors else timed_search
        result = find(get_searcher(run_dir), pixels, k, exclude_path=query.dataset_path,
                      hide_patient=hide_patient)
        copy = find_copy(pixels, result.hits, data_root, copy_rule(run_dir))
        best = familiarity_of(profile_of(run_dir), result.hits[0].score) if result.hits else None
        cached = (key, Answer(result, copy, best))
        st.session_state[_RESULTS] = cached
    return cached[1]


def warnings_ui(query: QueryImage, answer: Answer) -> None:
    """A verified copy, and a query unlike the dataset."""
    if answer.copy is not None:
        c = answer.copy
        st.warning(f"Same radiograph as result #{c.hit.rank} ({escape_markdown(c.reason)}).",
                   icon=":material/content_copy:")
    best = answer.familiar
    reasons = list(query.check.problems)
    if best is not None and best.unlike:
        reasons.append(f"its best match (cosine {best.best:.3f}) is lower than what 99% of this "
                       "dataset's own images get from their nearest neighbour")
    if reasons:
        st.warning("Unlike anything in this dataset: " + escape_markdown("; ".join(reasons))
                   + ". The results are the least unlike images, not similar cases.",
                   icon=":material/help:")


def score_notes_ui(query: QueryImage, answer: Answer, run_dir: Path, seconds: float, landmarks: bool) -> None:
    """Below the results: the query time, where the best score stands, the copy rule and what
    'pct' means (above them, these lines pushed the first row of results off a laptop screen)."""
    best = answer.familiar
    notes = [f"Query time {seconds * 1000:.0f} ms (embedding + search" + (" + landmarks)." if landmarks else ").")]
    if best is not None and not best.unlike and not query.check.problems:
        notes.append(f"Best match cosine {best.best:.3f}: higher than the nearest-neighbour score of "
                     f"{best.percentile:.0f}% of this dataset's own images.")
    st.caption(" ".join(notes))
    st.caption(escape_markdown(copy_rule(run_dir).describe()) + " · pct: the share of this dataset's "
               "images whose own best match scores lower.")


def result_cell(hit: Hit, profile: ScoreProfile, prior: SamePatientPrior, query: QueryImage,
                key: bytes, shared: int | None = None) -> GridItem:
    """A result's thumbnail lines: rank, cosine and percentile; label; patient (its keyed
    name, `display_patient`) and the "same patient?" note where there is one; shared
    landmarks when ranked by them; file name."""
    details = [f"patient {display_patient(hit.patient_id, key)}"] if hit.patient_id else []
    note = same_patient_note(prior, hit.score, hit.patient_id, query.patient_id)
    if note:
        details.append(note)
    if shared is not None:
        details.append(f"{shared} shared landmarks")
    return GridItem(hit.path, hit.label, f"#{hit.rank} · cosine {hit.score:.3f} · "
                                         f"pct {profile.percentile(hit.score):.0f}", tuple(details))


def patients_caption(prior: SamePatientPrior, hidden: str | None) -> None:
    """What the patient lines mean: the hidden patient, and where the hint comes from."""
    text = patients_caption_text(prior, hidden)
    if text:
        st.caption(escape_markdown(text))


def vote_ui(result: TimedHits) -> None:
    """The labels of the top-k, most frequent first."""
    votes = label_vote(result.hits)
    if not votes or not any(v.label for v in votes):  # an unlabelled run has no vote to show
        return
    st.markdown(f"**Label vote of the top {len(result.hits)}**")
    st.dataframe(pd.DataFrame([{"label": v.label, "votes": v.count, "share": v.fraction}
                               for v in votes]),
                 hide_index=True, key="search_vote",
                 column_config={"share": st.column_config.ProgressColumn(format="percent",
                                                                         min_value=0, max_value=1)})


def compare_ui(query: QueryImage, pixels: np.ndarray, result: TimedHits, data_root: Path,
               roots: tuple[Path, ...]) -> None:
    """The query beside a result the user picks (the picker is new for each list of results:
    hiding the patient or re-ranking renumbers the films, and a picker kept across that showed
    the old #1's name over the new #1's image). `roots`: the allowed roots (`dataset_file`)."""
    ranks = [h.rank for h in result.hits]
    if not ranks:
        return
    by_rank = {h.rank: h for h in result.hits}
    listed = hashlib.sha1("\n".join(h.path for h in result.hits).encode()).hexdigest()[:12]
    rank = st.selectbox("Compare the query with result", ranks,
                        key=f"search_compare_{query.digest}_{query.dataset_path}_{listed}",
                        format_func=lambda r: f"#{r} · {Path(by_rank[r].path).name}")
    hit = by_rank[rank]
    left, right = st.columns(2)
    with left:
        st.image(preview(pixels), width=COMPARE_PX)
        st.text(f"query: {query.name}")
    with right:
        try:
            shown = load_image(dataset_file(data_root, hit.path, roots), name=hit.path).pixels
            st.image(preview(shown), width=COMPARE_PX)
        except ImageReadError as e:
            st.error(escape_markdown(str(e)))
        label = f" · {hit.label}" if hit.label else ""
        st.text(f"shown: #{hit.rank} · {Path(hit.path).name} · cosine {hit.score:.3f}{label}\n"
                f"{hit.path}")


ws = workspace_ui()
st.title("Search by example")
synthetic_banner(ws)
run_dir = ws.active_run
if run_dir is None:
    st.info(no_model_note(ws))
    st.stop()
model_banner(ws, run_dir)
emb = load_embeddings(run_dir)
data_root = get_searcher(run_dir).data_root
roots = allowed_roots(ws.root)  # films `add` took from other folders are opened inside these only
key = patient_names_key(ws)  # patients are shown by their keyed names, never their ids

# The query (its source, the film, its settings) is the left column, so that at 1280 x 720 the
# first row of results shows without scrolling (the uploader above both columns pushed them to
# y = 640).
query_col, results_col = st.columns([1, 3])
with query_col:
    query = query_source_ui(emb, data_root, roots)
if query is None:
    st.stop()
if isinstance(query, QueryError):
    results_col.error(escape_markdown(query.message), icon=":material/broken_image:")
    st.stop()

with query_col:
    pixels, window = window_ui(query)
    st.image(preview(pixels), width="stretch")
    st.text(query.name)
    tags_ui(query.image.meta)
    k = st.slider("Results (k)", 1, min(50, len(emb)), min(10, len(emb)), key="search_k")
    hidden = hide_patient_ui(query)
    priors = priors_ui()

with st.spinner("Comparing landmarks with the nearest films…" if priors else "Searching…"):
    answer = search(run_dir, data_root, query, pixels, window, k, hidden, priors)
result = answer.result
profile = profile_of(run_dir)
prior = get_searcher(run_dir).same_patient_prior
with results_col:
    st.subheader(f"Top {len(result.hits)} of {len(emb)} images")
    warnings_ui(query, answer)
    shared = result.shared or (None,) * len(result.hits)
    image_grid([result_cell(h, profile, prior, query, key, n) for h, n in zip(result.hits, shared, strict=True)],
               data_root, run_dir, columns=4, size=RESULT_PX, roots=roots)
    if result.shared is not None and not any(result.shared):
        st.caption("Ranked by shared landmarks: no film shares any with this query (too small, "
                   "blank or not a chest film?), so the embedding's order is kept.")
    elif result.shared is not None:
        st.caption("Ranked by shared landmarks: the nearest films re-ordered by how many anatomical "
                   "keypoints they share with the query under one shift, rotation and magnification. "
                   "A patient's other films share the most; on the development set this put one "
                   "first for 0.60 of queries, against 0.32 for the embedding alone.")
    score_notes_ui(query, answer, run_dir, result.seconds, result.shared is not None)
    patients_caption(prior, display_patient(hidden, key) if hidden else None)
    vote_ui(result)
    st.download_button("Download results (CSV)", hits_csv(result.hits, query.name, key),
                       file_name="search-results.csv", mime="text/csv", key="search_csv",
                       on_click="ignore")

st.subheader("Compare")
compare_ui(query, pixels, result, data_root, roots)
