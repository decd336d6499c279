"""Home: the workspace at a glance (dataset, splits, active model, runs) and the ways in."""

from __future__ import annotations

from pages._routing import route_through_entry_point

route_through_entry_point()  # before the imports below, which load torch (seconds)

import shutil
from pathlib import Path

import pandas as pd
import streamlit as st

from core.data import (
    DatasetError,
    FolderNotAllowed,
    UploadError,
    allowed_roots,
    check_allowed,
    dataset_dir_for,
    extract_dataset_zip,
    scan_dataset,
)
from core.data.overview import NONE, DatasetOverview
from core.errors import one_line
from core.jobs import training as jobs
from core.retrieval import RetrievalScores, baseline_gap, baseline_words, load_evaluation
from core.run_folder import RunPaths, list_runs
from core.runs import Workspace, ensure_demo_workspace, load_report, model_data
from pages._images_ui import escape_markdown
from pages._shared import (
    dataset_is_synthetic,
    dataset_overview,
    flash,
    load_json,
    load_run_summary,
    no_model_note,
    pending_pairs,
    progress_line,
    runs_table,
    synthetic_banner,
    workspace_ui,
)


def first_start_ui(ws: Workspace) -> None:
    """An empty workspace offers the demo set and a demo model, one click away.

    Opening a page never writes: a URL may select an existing workspace, but creating one,
    writing the demo set or starting a training takes this click.
    """
    empty = ws.dataset_path is None and not list_runs(ws.runs_dir)
    untrained_demo = not empty and jobs.demo_pending(ws)
    if not (empty or untrained_demo):
        return
    label = ("Set up the demo: a SYNTHETIC data set and a small model" if empty
             else "Train the demo model on the SYNTHETIC demo set")
    st.info("This workspace has no model yet. Bring your own data in below, or start with the demo.")
    if not st.button(label, key="home_demo", icon=":material/play_arrow:"):
        return
    with st.spinner("Generating the SYNTHETIC demo set and starting a small demo model…"):
        try:
            jobs.first_start(ws)
        except (jobs.JobError, DatasetError, OSError, ValueError) as e:
            st.error(f"Could not prepare the demo: {escape_markdown(str(e))}")
            return
    st.rerun()


def training_panel(ws: Workspace) -> None:
    """Progress of the running training; a full rerun when it ends (new model, new table)."""
    job = jobs.running_job(ws)
    if job is None:
        if st.session_state.pop("home_watching", None):
            st.rerun()
        return
    st.session_state["home_watching"] = job.name
    fraction, line = progress_line(job.run_dir)
    label = "demo model (SYNTHETIC data)" if job.name == jobs.DEMO_RUN else f"run '{job.name}'"
    st.progress(fraction, text=f"Training the {label}: {line}")
    st.page_link("pages/train.py", label="Watch the curves and the log on the Train page",
                 icon=":material/monitoring:")


def dataset_section(ws: Workspace) -> None:
    st.subheader("Dataset")
    if ws.dataset_path is None:
        st.info("No dataset yet: use one of the ways in below.")
        return
    synthetic_banner(ws)
    info = dataset_overview(ws.dataset_path, ws.root)
    if "error" in info:
        st.error(escape_markdown(info["error"]))
        return
    o: DatasetOverview = info["overview"]
    if o.has_labels:
        classes_ui(ws, o)
    else:
        archive_ui(ws, o)
    st.caption(f"{escape_markdown(o.path)} · layout: {o.layout} · patient ids: "
               f"{'yes (splits keep each patient in one split)' if o.has_patients else 'no'}")
    if o.skipped:
        with st.expander(f"{o.n_skipped} files skipped"):
            st.dataframe(pd.DataFrame(o.skipped, columns=["file", "reason"]), hide_index=True,
                         key="home_skipped")
            if o.n_skipped > len(o.skipped):
                st.caption(f"The first {len(o.skipped)} of {o.n_skipped} are listed.")


def classes_ui(ws: Workspace, o: DatasetOverview) -> None:
    """A labelled dataset: its classes, counted and charted."""
    cols = st.columns([2.2, 1, 1, 1])  # the name needs room; SYNTHETIC goes in its label
    cols[0].metric("Dataset (SYNTHETIC)" if dataset_is_synthetic(ws) else "Dataset", o.name)
    cols[1].metric("Images", f"{o.n_images:,}")
    cols[2].metric("Classes", len(o.class_counts))
    cols[3].metric("Files skipped", o.n_skipped)
    counts = pd.DataFrame({"class": list(o.class_counts), "images": list(o.class_counts.values())})
    left, right = st.columns([2, 3])
    left.dataframe(counts, hide_index=True)
    right.bar_chart(counts, x="class", y="images", height=220)


def archive_ui(ws: Workspace, o: DatasetOverview) -> None:
    """An unlabelled archive: what it holds (films, patients, views, study years), no classes."""
    cols = st.columns([2.2, 1, 1, 1, 1])
    cols[0].metric("Dataset (SYNTHETIC)" if dataset_is_synthetic(ws) else "Dataset", o.name)
    cols[1].metric("Films", f"{o.n_images:,}")
    cols[2].metric("Patients", f"{o.n_patients:,}" if o.has_patients else "—",
                   help="Distinct patient ids (manifest or DICOM PatientID); "
                        f"{o.n_without_patient:,} films have none.")
    known_views = [v for v in o.views if v != NONE]
    cols[3].metric("Views", len(known_views) if known_views else "—",
                   help="Distinct DICOM ViewPosition values among the films kept.")
    cols[4].metric("Files skipped", o.n_skipped)
    st.caption("No labels: the model learns, searches and finds duplicates without them; "
               "scoring it by class needs a labelled folder (evaluate --data LABELLED_DIR).")
    left, right = st.columns(2)
    if known_views:
        left.dataframe(pd.DataFrame({"view": list(o.views), "films": list(o.views.values())}),
                       hide_index=True, key="home_views")
    else:
        left.caption("No view positions: no film carries a DICOM ViewPosition.")
    if o.study_years:
        years = pd.DataFrame({"study year": list(o.study_years), "films": list(o.study_years.values())})
        right.bar_chart(years, x="study year", y="films", height=220)
        right.caption("Study years: " + ", ".join(f"{y} ({n:,})" for y, n in o.study_years.items()))
    else:
        right.caption("No study dates: no film carries a DICOM StudyDate.")
    if o.has_patients and o.n_without_patient:
        st.caption(f"{o.n_without_patient:,} films have no patient id: each counts as its own "
                   "patient when the splits are made.")


def active_model_section(ws: Workspace) -> None:
    st.subheader("Active model")
    run = ws.active_run
    if run is None:
        st.info(no_model_note(ws, on_home=True))
        return
    row = load_run_summary(run)
    report = load_report(run)
    evaluation = load_evaluation(run)
    index_meta = load_json(Path(str(RunPaths(run).index) + ".json")) or {}
    cols = st.columns(5)
    cols[0].metric("Run", run.name)
    cols[1].metric("P@5", _fmt(row.precision_at_5))
    cols[2].metric("mAP", _fmt(row.map))
    cols[3].metric("mAP@R", _fmt(row.map_at_r))
    cols[4].metric("Index size", f"{index_meta.get('ntotal', report.n_images if report else 0):,}")
    splits = report.split_counts if report else {}
    pending = pending_pairs(ws, run)
    facts = [f"{row.preset} preset, {row.arch}, {row.epochs_done} epochs",
             "splits: " + ", ".join(f"{k} {v}" for k, v in splits.items())]
    if pending is not None:
        facts.append(f"duplicate pairs awaiting review: {pending}")
    st.caption(" · ".join(facts))
    warning = model_data(run, ws.dataset_path).warning(dataset_is_synthetic(ws))
    if warning:
        st.warning(escape_markdown(warning))
    if evaluation is not None and evaluation.scores.map is None:  # no labels: no table of empty cells
        why = evaluation.label_metrics_skipped.removeprefix("label metrics skipped: ") or "the test split has no labels"
        st.caption(escape_markdown(f"No label metrics: {why}. Score this model on a labelled folder with "
                                   f"python -m core evaluate --run {run} --data LABELLED_DIR"))
    elif evaluation is not None and evaluation.baselines:
        rows = [{"model": f"this run ({run.name})", **_scores(evaluation.scores)}]
        rows += [{"model": f"baseline: {baseline_words(k)}", **_scores(v)}
                 for k, v in evaluation.baselines.items()]
        st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={
            k: st.column_config.NumberColumn(format="%.3f") for k in ("P@1", "P@5", "P@10", "mAP", "mAP@R")})
        st.caption(f"Test split as queries ({evaluation.scores.n_queries}) against "
                   f"{evaluation.scores.n_gallery} images: {evaluation.protocol}")
        gap = baseline_gap(evaluation)
        if gap is not None:
            epochs = report.epochs_done if report else (row.epochs_done or 0)
            st.warning(escape_markdown(gap.describe(epochs, splits.get("train", 0))),
                       icon=":material/trending_down:")


def _scores(s: RetrievalScores) -> dict:
    return {"P@1": s.precision_at_1, "P@5": s.precision_at_5, "P@10": s.precision_at_10,
            "mAP": s.map, "mAP@R": s.map_at_r}


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def runs_section(ws: Workspace) -> None:
    table = runs_table(ws)
    if table.empty:
        return
    st.subheader("Runs")
    cols = [c for c in ("run", "state", "preset", "arch", "epochs_done", "epochs", "image_size",
                        "best_val_loss", "precision_at_5", "map", "map_at_r", "wall_seconds")
            if c in table]
    st.dataframe(table[cols], hide_index=True, column_config={
        "precision_at_5": st.column_config.NumberColumn("P@5", format="%.3f"),
        "map": st.column_config.NumberColumn("mAP", format="%.3f"),
        "map_at_r": st.column_config.NumberColumn("mAP@R", format="%.3f"),
        "best_val_loss": st.column_config.NumberColumn("best val loss", format="%.4f"),
        "wall_seconds": st.column_config.NumberColumn("wall time (s)", format="%.0f"),
    })


def use_dataset(ws: Workspace, root: Path, n_images: int, synthetic: bool = False) -> None:
    ws.update(dataset=str(root), synthetic=synthetic)
    run = ws.active_run
    data = model_data(run, root) if run is not None else None
    if data is not None and data.path and not data.differs and not data.problem:
        then = (f"The active model '{escape_markdown(run.name)}' was trained on it: Search, the Map "
                "and Duplicates use it.")
    else:
        then = "Train a model on it on the Train page."
    flash(f"Now using {escape_markdown(root.name)}: {n_images:,} images. {then}")
    st.rerun()


def ways_in(ws: Workspace) -> None:
    st.subheader("Bring data in")
    # The open tab is kept in session state: untracked tabs went back to the first one on the
    # rerun that Enter in the folder field makes, hiding the path just typed.
    demo, folder, upload = st.tabs(["Synthetic demo set", "Folder on the server", "Upload a zip"],
                                   key="home_source", on_change="rerun")
    with demo:
        st.write("Generated chest-radiograph phantoms in four classes, with planted near-duplicates. "
                 "**SYNTHETIC: no patient images.** Good for trying every page in minutes.")
        if st.button("Use the synthetic demo set"):
            ws.update(dataset=None)
            with st.spinner("Generating the SYNTHETIC demo set…"):
                info = ensure_demo_workspace(ws.root)
            use_dataset(ws, ws.dataset_path or ws.root, info.n_images, synthetic=True)
    with folder:
        roots = allowed_roots(ws.root)
        path = st.text_input("Folder on this server",
                             placeholder=str(roots[-1] / "chest-xrays"),
                             help="Class folders (<Label>/*.png|jpg|dcm), the Kaggle COVID-19 "
                                  "Radiography layout, or a manifest.csv (file,label[,patient_id]).")
        st.caption("Allowed under: " + ", ".join(f"`{r}`" for r in roots))
        if st.button("Open folder"):
            try:
                dataset = scan_dataset(check_allowed(path, roots))
            except (FolderNotAllowed, DatasetError, OSError) as e:  # OSError: a name too long, ...
                st.error(escape_markdown(one_line(e)))
            else:
                use_dataset(ws, dataset.root, len(dataset.samples))
    with upload:
        upload_ui(ws)


def upload_ui(ws: Workspace) -> None:
    limit_mb = int(st.get_option("server.maxUploadSize"))
    st.write(f"A zip of class folders (`<Label>/<image>`), up to **{limit_mb} MB**. Larger "
             "datasets: copy them to the server and use *Folder on the server* (or raise "
             "`server.maxUploadSize` in `.streamlit/config.toml`).")
    up = st.file_uploader("Zip of class folders", type=["zip"])
    if up is None:
        return
    if up.size > limit_mb * 1024 * 1024:
        st.error(f"{escape_markdown(up.name)} is {up.size / 1e6:.0f} MB, over the {limit_mb} MB upload limit.")
        return
    if not st.button(f"Unpack {escape_markdown(up.name)} and use it"):
        return
    dest = dataset_dir_for(ws.datasets_dir, up.name)
    try:
        with st.spinner(f"Unpacking {escape_markdown(up.name)}…"):
            out = extract_dataset_zip(up, dest)
        dataset = scan_dataset(out.root)
    except UploadError as e:
        st.error(escape_markdown(str(e)))
        return
    except DatasetError as e:
        shutil.rmtree(dest, ignore_errors=True)
        st.error(f"Unpacked, but not usable as a dataset: {escape_markdown(str(e))}")
        return
    use_dataset(ws, dataset.root, len(dataset.samples))


ws = workspace_ui()
st.title("Similar and near-duplicate chest X-rays")
flash()
first_start_ui(ws)
running = jobs.running_job(ws) is not None
st.fragment(training_panel, run_every=2 if running else None)(ws)
dataset_section(ws)
active_model_section(ws)
runs_section(ws)
ways_in(ws)
