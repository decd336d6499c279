"""Train: the recipe form, the running job (progress, curves, log), and the past runs."""

from __future__ import annotations

from pages._routing import route_through_entry_point

route_through_entry_point()  # before the imports below, which load torch (seconds)

import math
import time
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from core.config import ARCHS, DEVICES, OPTIONS, PRESETS, ConfigError, Option
from core.device import resolve_device
from core.jobs import training as jobs
from core.model import imagenet_weights_available
from core.run_folder import RunError, RunPaths, list_runs, read_status
from core.runs import Workspace, delete_run
from core.train import estimate_training, measure_warmup, saved_warmup
from pages._images_ui import escape_markdown
from pages._shared import (
    dataset_overview,
    flash,
    format_seconds,
    metrics_frame,
    progress_line,
    runs_table,
    synthetic_banner,
    workspace_ui,
)

RECIPES = {"seed": "Seed recipe (resnet18, 224 px, 50 epochs)",
           "quick": f"Quick ({PRESETS['quick'].train.image_size} px, {PRESETS['quick'].train.epochs} epochs, "
                    "patient positives)"}
RESUMABLE = ("stopped", "interrupted", "failed")


def loss_figure(run_dir: Path) -> go.Figure | None:
    """Train and validation NT-Xent per epoch."""
    m = metrics_frame(run_dir)
    if m.empty:
        return None
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=m["epoch"], y=m["train_loss"], name="train", mode="lines+markers"))
    if "val_loss" in m and m["val_loss"].notna().any():
        fig.add_trace(go.Scatter(x=m["epoch"], y=m["val_loss"], name="validation", mode="lines+markers"))
    fig.update_layout(height=280, margin=dict(l=10, r=10, t=30, b=10), title="NT-Xent loss",
                      xaxis_title="epoch", yaxis_title="loss", legend=dict(orientation="h", y=1.15))
    # whole epochs only (plotly put ticks at 1.5, 2.5, ... for a few epochs), at most ~10 ticks
    fig.update_xaxes(tick0=1, dtick=max(1, math.ceil(len(m) / 10)))
    return fig


def live_panel(ws: Workspace, run_dir: Path) -> None:
    """Progress, curves, throughput and log of one run; Stop and Resume."""
    running = jobs.is_running(run_dir)
    if st.session_state.get("train_was_running") and not running:
        st.session_state["train_was_running"] = False
        st.rerun()  # it ended: refresh the whole page (runs table, active model)
    st.session_state["train_was_running"] = running
    status = read_status(run_dir)
    fraction, line = progress_line(run_dir)
    st.progress(fraction, text=f"**{run_dir.name}**: {line}")
    m = metrics_frame(run_dir)
    cols = st.columns(4)
    cols[0].metric("Epochs done", f"{len(m)}/{status.get('epochs') or '?'}")
    cols[1].metric("Images/s", f"{m['images_per_s'].iloc[-1]:.1f}" if not m.empty else "—")
    best = m["val_loss"].min() if not m.empty and "val_loss" in m and m["val_loss"].notna().any() else None
    cols[2].metric("Best val loss", f"{best:.4f}" if best is not None else "—")
    cols[3].metric("ETA", format_seconds(status.get("eta_s")) if running else "—")
    fig = loss_figure(run_dir)
    if fig is not None:
        st.plotly_chart(fig, key=f"loss-{run_dir.name}")
    buttons = st.columns([1, 1, 4])
    stopping = running and st.session_state.get("train_stopping") == str(run_dir)
    if running and not stopping and buttons[0].button("Stop", icon=":material/stop:", key="stop"):
        jobs.stop(run_dir)
        st.session_state["train_stopping"] = stopping = str(run_dir)
    if stopping:
        buttons[2].caption("Stopping after the current step (embedding and evaluation, once begun, "
                           "finish first). Resume continues from the last complete epoch.")
        if buttons[0].button("Kill now", icon=":material/dangerous:", key="kill",
                             help="End the process at once; Resume still works from the last epoch."):
            jobs.kill(run_dir)
    if not running:
        st.session_state.pop("train_stopping", None)
    if not running and status.get("state") in RESUMABLE and not (run_dir / jobs.JOB_FILE).is_file():
        buttons[2].caption("Started from the command line: run the same `python -m core train` "
                           "command again to resume it.")
    elif not running and status.get("state") in RESUMABLE:
        if buttons[1].button("Resume", icon=":material/play_arrow:", key="resume"):
            try:
                jobs.resume(run_dir, ws)
            except jobs.JobError as e:
                st.error(escape_markdown(str(e)))
            else:
                st.rerun()
    with st.expander("Log", expanded=running or status.get("state") == "failed"):
        st.code(jobs.log_tail(run_dir, lines=30) or "(no output yet)", language=None)


def recipe_ui(ws: Workspace, n_images: int) -> tuple[str, dict, str] | None:
    """The form: preset, settings, device and an estimate. Returns (preset, options, run name)."""
    preset = st.segmented_control("Recipe", list(RECIPES), default="seed", required=True,
                                  format_func=RECIPES.get, key="train_preset")
    train = PRESETS[preset].train
    k = f"train_{preset}_"  # one set of widgets per preset: switching shows that preset's values
    c = st.columns(3)
    arch = c[0].selectbox("Encoder", ARCHS, key=k + "arch")
    cached = imagenet_weights_available(arch)
    weights_options = ["imagenet", "none"]
    default_weights = "imagenet" if preset == "seed" and cached else "none"
    weights = c[1].selectbox("Initial weights", weights_options, index=weights_options.index(default_weights),
                             key=k + "weights", format_func={"imagenet": "ImageNet", "none": "random (none)"}.get)
    device_choice = c[2].selectbox("Device", DEVICES, key=k + "device")
    numbers = [o for o in OPTIONS if o.is_number]
    cols = [col for _ in range(0, len(numbers), 4) for col in st.columns(4)]
    values = {o.name: number_input(col, o, getattr(train, o.name), k) for col, o in zip(cols, numbers, strict=False)}
    epochs, batch, size, temp = (values[n] for n in ("epochs", "batch_size", "image_size", "temperature"))
    if not cached:
        st.caption(f"ImageNet weights for {arch} are not in the local torch cache, and this server may "
                   "not download them: starting from random weights by default.")
    elif preset == "quick":
        st.caption("The quick preset starts from random weights (reproducible offline); ImageNet is an option.")
    try:
        device = resolve_device(device_choice)
    except ConfigError as e:
        st.error(str(e))
        return None
    gpu = f" ({_gpu_name()})" if device.type == "cuda" else " (no CUDA GPU visible)" if device_choice == "auto" else ""
    warm = saved_warmup(ws.runs_dir, arch, int(size), device.type)
    est = estimate_training(n_images, int(epochs), int(size), arch, device.type, ws.runs_dir,
                            warmup=(warm.images_per_s, warm.basis()) if warm else None)
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.markdown(f"Will train on **{device.type}**{gpu}. Estimated time: **about {format_seconds(est.seconds)}** "
                  f"for {n_images:,} images × {epochs} epochs (an estimate; throughput {est.basis}).")
    busy = jobs.running_job(ws) is not None
    if right.button("Measure here", key="train_warmup", disabled=busy,
                    help="Time a few training steps of this recipe on this machine now (a few seconds; "
                         "longer on a busy machine). Not while a training runs."):
        with st.spinner("Timing a few training steps of this recipe…"):
            measure_warmup(ws.runs_dir, arch, int(size), device_choice, int(batch), float(temp),
                           augment=PRESETS[preset].augment)
        st.rerun()
    auto = st.session_state.get("train_auto_name")
    if st.session_state.get("train_run_name") in (None, auto) and (auto or "").split("-")[0] != preset:
        auto = f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"  # follows the preset until edited
        st.session_state["train_run_name"] = st.session_state["train_auto_name"] = auto
    name = st.text_input("Run name", key="train_run_name")
    options = values | {"arch": arch, "weights": weights, "device": device_choice}
    return preset, options, name


def number_input(col, option: Option, default: int | float, key_prefix: str) -> int | float:
    """One recipe number, its range, step and format taken from core.config.OPTIONS."""
    cast = option.kind
    step = cast(option.step) if option.step is not None else None
    value = col.number_input(option.label, cast(option.low), cast(option.high), cast(default), step=step,
                             format=option.fmt, help=option.help or None, key=key_prefix + option.name)
    return cast(value)


def _gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0)


def start_ui(ws: Workspace, choice: tuple[str, dict, str] | None, current: jobs.Job | None) -> None:
    if current is not None:
        st.warning(f"Run '{current.name}' is training in this workspace. One training at a time: "
                   "stop it above, or wait until it ends.")
    if not st.button("Start training", type="primary", icon=":material/play_arrow:",
                     disabled=current is not None or choice is None):
        return
    preset, options, name = choice
    try:
        job = jobs.start_training(ws, name.strip(), jobs.train_args(ws.dataset_path, preset, **options))
    except (ConfigError, jobs.JobError) as e:
        st.error(escape_markdown(str(e)))
        return
    st.session_state["train_watch"] = job.name
    for key in ("train_run_name", "train_auto_name"):  # a fresh default name for the next run
        st.session_state.pop(key, None)
    flash(f"Started '{job.name}'. It runs in its own process: leaving this page does not stop it.")
    st.rerun()


def past_runs_ui(ws: Workspace) -> None:
    table = runs_table(ws)
    if table.empty:
        return
    st.subheader("Past runs")
    table = table.drop(columns=["path"])
    first = [c for c in ("run", "state", "precision_at_5", "map", "map_at_r", "same_patient_p@1",
                         "same_patient_reranked_p@1") if c in table.columns]
    table = table[first + [c for c in table.columns if c not in first]]  # the metrics in view at 1280 px
    table = _same_patient_text(table)
    fmt = {c: st.column_config.NumberColumn(format="%.3f") for c in table.columns
           if c.endswith(("p@5", "map@r", "p@1")) or c in ("precision_at_5", "map", "map_at_r")}
    st.dataframe(table, hide_index=True, column_config={
        **fmt, "precision_at_5": st.column_config.NumberColumn("P@5", format="%.3f"),
        "map": st.column_config.NumberColumn("mAP", format="%.3f"),
        "map_at_r": st.column_config.NumberColumn("mAP@R", format="%.3f"),
        "same_patient_p@1": st.column_config.TextColumn(
            "same-patient P@1",
            help="Another film of the query's patient ranked first (test queries whose patient has one)"),
        "same_patient_reranked_p@1": st.column_config.TextColumn(
            "same-patient P@1, re-ranked",
            help="The same, once the model's 30 nearest films are re-ranked by shared landmarks "
                 "(anatomical keypoints that agree on one transform)"),
        "best_val_loss": st.column_config.NumberColumn("best val loss", format="%.4f"),
        "wall_seconds": st.column_config.NumberColumn("wall time (s)", format="%.0f")})
    runs = list_runs(ws.runs_dir)
    if not runs:
        return
    active = ws.active_run
    names = [r.name for r in runs]
    c = st.columns([2, 1, 1, 1, 1], vertical_alignment="bottom")
    pick = c[0].selectbox("Run", names, index=names.index(active.name) if active and active.name in names else 0,
                          key="train_pick")
    run = runs[names.index(pick)]
    is_active = active is not None and run == active
    if c[1].button("Make active", disabled=is_active or not RunPaths(run).index.is_file(),
                   help="Search, the Map and Duplicates use the active model (a finished run)."):
        ws.update(active_run=str(run))
        st.rerun()
    paths = RunPaths(run)
    for col, path, label in ((c[2], paths.best, "best.pt"), (c[3], paths.test_embeddings, "test_embeddings.npy")):
        if path.is_file():
            col.download_button(label, data=path.read_bytes, file_name=f"{run.name}-{path.name}",
                                icon=":material/download:", on_click="ignore", key=f"dl-{path.name}")
    delete_ui(ws, run, c[4], is_active)


SAME_PATIENT = ("same_patient_p@1", "same_patient_reranked_p@1")


def _same_patient_text(table):
    """Same-patient columns as text, '—' for a run without them (data without patient ids, a run
    not evaluated): left as numbers, a missing value read "None". Omitted when no run has them."""
    for col in SAME_PATIENT:
        if col not in table:
            continue
        if table[col].isna().all():
            table = table.drop(columns=[col])
        else:
            table[col] = [("—" if v is None or v != v else f"{float(v):.3f}") for v in table[col]]
    return table


def delete_ui(ws: Workspace, run: Path, col, is_active: bool) -> None:
    """Delete a run after a confirmation; never the active model or a run that is working."""
    busy = jobs.is_running(run)
    why = "the active model" if is_active else "still working" if busy else ""
    with col.popover("Delete…", disabled=bool(why), help=f"Not possible: {why}." if why else
                     "Delete this run's folder (model, index, logs) for good."):
        sure = st.checkbox(f"Delete '{run.name}' and all its files", key=f"train_del_ok_{run.name}")
        if st.button("Delete for good", type="primary", disabled=not sure, key=f"train_del_{run.name}"):
            try:
                delete_run(ws, run)
            except RunError as e:
                st.error(escape_markdown(str(e)))
                return
            st.session_state.pop("train_watch", None)
            flash(f"Deleted run '{escape_markdown(run.name)}'.")
            st.rerun()


def watched_run(ws: Workspace, current: jobs.Job | None) -> Path | None:
    """The running job's folder, else the run chosen here before, else the newest."""
    if current is not None:
        return current.run_dir
    runs = list_runs(ws.runs_dir)
    chosen = st.session_state.get("train_watch")
    for r in runs:
        if r.name == chosen:
            return r
    return runs[0] if runs else None


ws = workspace_ui()
st.title("Train")
flash()
synthetic_banner(ws)
if ws.dataset_path is None:
    st.info("No dataset in this workspace yet.")
    st.page_link("pages/home.py", label="Bring data in on the Home page", icon=":material/home:")
    st.stop()
overview = dataset_overview(ws.dataset_path)
if "error" in overview:
    st.error(escape_markdown(overview["error"]))
    st.stop()
st.caption(f"Dataset: {escape_markdown(overview['name'])} · {overview['n_images']:,} images · "
           f"{len(overview['class_counts'])} classes")
current = jobs.running_job(ws)
watch = watched_run(ws, current)
if watch is not None:
    st.subheader("Current run" if current else "Latest run")
    st.fragment(live_panel, run_every=2 if current else None)(ws, watch)
st.subheader("New run")
start_ui(ws, recipe_ui(ws, overview["n_images"]), current)
past_runs_ui(ws)
