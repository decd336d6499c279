"""View helpers shared by every page: the workspace sidebar, cached loaders, small widgets.

Each page starts with `ws = workspace_ui()` (it draws the sidebar once and returns the
Workspace), then reads through the cached loaders below. Nothing the app needs lives only
in session state: the workspace folder is also kept in the URL (`?workspace=...`), and
everything else in the workspace folder itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from core.data import DatasetError, FolderNotAllowed, allowed_roots, check_allowed, scan_dataset
from core.data.dataset import HEADER_CACHE, ListingOptions
from core.data.overview import describe_dataset
from core.data.patient_ids import patient_key
from core.embed import Embeddings
from core.errors import UserError, one_line
from core.files import file_stamp, read_json, read_jsonl
from core.jobs.training import demo_pending, running_job
from core.run_folder import RunPaths, list_runs, read_status
from core.runs import RunSummary, Workspace, model_data, run_summary, workspace_root
from core.runs import finished_runs as _finished_runs
from core.runs.workspace import WorkspaceError, check_workspace_folder
from pages._images_ui import escape_markdown

if TYPE_CHECKING:
    from core.retrieval import Searcher

_WS_KEY = "cxr_workspace"  # the chosen folder (session state + URL), not a widget key
SYNTHETIC_NOTE = "SYNTHETIC demo data: computer-generated phantoms, not patient images."



# ---- workspace and active run -------------------------------------------------------------

def _chosen_folder(default: Path) -> Path:
    """The session's folder, else the URL's (after a refresh), else $CXR_WORKSPACE/./workspace."""
    from_url = not st.session_state.get(_WS_KEY)
    value = st.session_state.get(_WS_KEY) or st.query_params.get("workspace")
    if value:
        try:
            folder = check_workspace_folder(check_allowed(value, allowed_roots(default)))
        except (FolderNotAllowed, WorkspaceError) as e:
            st.sidebar.error(escape_markdown(str(e)))
            return default
        if from_url and not folder.is_dir():  # a link selects a workspace, never makes one
            st.sidebar.warning(f"No workspace at {escape_markdown(str(folder))}: type it in the "
                               "box below to create it.")
            return default
        return folder
    return default


def workspace_ui() -> Workspace:
    """Sidebar: the workspace folder (changeable, remembered in the URL) and the active run.

    Returns:
        The Workspace the page should show.
    """
    default = workspace_root()
    folder = _chosen_folder(default)
    st.session_state[_WS_KEY] = str(folder)
    if folder != default:  # navigation clears the URL's parameters: put it back every run
        st.query_params["workspace"] = str(folder)
    elif "workspace" in st.query_params:
        del st.query_params["workspace"]
    with st.sidebar:
        typed = st.text_input("Workspace folder", value=str(folder),
                              help="Datasets, runs and reviews live here. "
                                   "Default: $CXR_WORKSPACE or ./workspace.")
        if typed.strip() and typed.strip() != str(folder):
            try:
                new = check_workspace_folder(check_allowed(typed, allowed_roots(default)))
                st.session_state[_WS_KEY] = str(new)
                st.rerun()
            except (FolderNotAllowed, WorkspaceError) as e:
                st.error(escape_markdown(str(e)))
        ws = Workspace(folder)
        try:  # the default folder too; workspace.json is read once here, so a damaged one stops
            check_workspace_folder(ws.root)
            ws.settings()
        except WorkspaceError as e:
            problem = one_line(e)
        else:
            problem = None
            _active_run_sidebar(ws)
    if problem:
        st.error(escape_markdown(problem), icon=":material/error:")
        st.stop()
    return ws


def finished_runs(ws: Workspace) -> list[Path]:
    """Runs with an index (usable for search), newest first."""
    return _finished_runs(ws.runs_dir)


def _active_run_sidebar(ws: Workspace) -> None:
    runs = finished_runs(ws)
    if not runs:
        st.caption("Active model: none yet (" + ("train one on the Train page)." if ws.dataset_path is not None
                                                 else "bring data in on the Home page first)."))
        return
    active = ws.active_run
    names = [r.name for r in runs]
    index = names.index(active.name) if active is not None and active.name in names else 0
    choice = st.selectbox("Active model", names, index=index,
                          help="The run whose model and index Search, the Map and Duplicates use.")
    if active is None or choice != active.name:
        ws.update(active_run=str(runs[names.index(choice)]))
    row = load_run_summary(runs[names.index(choice)])
    data = model_data(runs[names.index(choice)], ws.dataset_path)
    if row.problem:  # a damaged config.json or status.json, named
        st.warning(escape_markdown(row.problem), icon=":material/warning:")
    facts = [data.note()] if not data.problem else []
    if row.map_at_r is not None and row.precision_at_5 is not None:
        facts.append(f"P@5 {row.precision_at_5:.3f} · mAP@R {row.map_at_r:.3f}")
    if facts:
        st.caption(escape_markdown(" ".join(facts)))


def dataset_is_synthetic(ws: Workspace) -> bool:
    """True when the workspace's dataset is the generated demo set."""
    path = ws.dataset_path
    return bool(ws.settings().get("synthetic")) or (path is not None and (path / "demo.json").is_file())


def no_model_note(ws: Workspace, on_home: bool = False) -> str:
    """What to do when the workspace has no trained model (the demo model starts only with
    `make run` or Home's button: opening a page never starts a training): the one next step
    that works from here (with no dataset yet, that is Home, never Train)."""
    if ws.dataset_path is None:
        where = "below" if on_home else "on the Home page (the demo set is one click away there)"
        return f"No dataset in this workspace yet: bring one in {where}; a model is trained on it next."
    job = running_job(ws)
    if job is not None:
        return (f"No trained model yet: '{job.name}' is training (its progress is on the Train "
                "page); pages use it once it has finished.")
    note = "No trained model yet: train one on the Train page."
    if demo_pending(ws):
        note += " For the demo set, the demo model is one click away on Home."
    return note


def synthetic_banner(ws: Workspace) -> None:
    """Say, where demo data shows, that it is SYNTHETIC."""
    if dataset_is_synthetic(ws):
        st.info(SYNTHETIC_NOTE, icon=":material/science:")


def model_banner(ws: Workspace, run: Path) -> None:
    """On a page that uses a model: what it was trained on, and a warning when that is not
    the workspace's current dataset (e.g. a SYNTHETIC-data model answering real films)."""
    data = model_data(run, ws.dataset_path)
    warning = data.warning(dataset_is_synthetic(ws))
    if warning:
        st.warning(escape_markdown(warning), icon=":material/warning:")
    else:
        st.caption(escape_markdown(f"{data.note()} Run: {run.name} (change it in the sidebar)."))


def compact_banners(ws: Workspace, run: Path) -> None:
    """synthetic_banner and model_banner as one caption, for a page whose screen is tight (the
    review desk); a model trained on other data still gets its full warning."""
    data = model_data(run, ws.dataset_path)
    warning = data.warning(dataset_is_synthetic(ws))
    if warning:
        st.warning(escape_markdown(warning), icon=":material/warning:")
    parts = [f":material/science: **{SYNTHETIC_NOTE}**"] if dataset_is_synthetic(ws) else []
    if not warning:
        parts.append(escape_markdown(f"{data.note()} Run: {run.name}."))
    if parts:
        st.caption(" ".join(parts))


# ---- cached loaders -------------------------------------------------------------------------

@st.cache_resource(max_entries=4, show_spinner="Loading the model and its index…")
def _searcher(run_dir: str, stamp: float) -> Searcher:
    from core.retrieval import Searcher  # torch and FAISS: only pages that search pay for them

    return Searcher(run_dir)


def get_searcher(run_dir: Path) -> Searcher:
    """The run's Searcher, shared by all sessions (eval mode; do not mutate it).

    Damaged or missing files (a corrupt index, a deleted checkpoint, a full disk) stop the
    page with their one-line message.
    """
    paths = RunPaths(run_dir)
    with stop_on_error():
        return _searcher(str(run_dir), file_stamp(paths.index) + file_stamp(paths.model))


@st.cache_data(max_entries=8, show_spinner=False)
def _embeddings(run_dir: str, stamp: float) -> Embeddings:
    return Embeddings.load(run_dir)


def load_embeddings(run_dir: Path) -> Embeddings:
    """The run's embeddings (paths, labels, splits, vectors), cached per file version; a
    malformed or missing file stops the page with one line."""
    with stop_on_error():
        return _embeddings(str(run_dir), file_stamp(RunPaths(run_dir).embeddings))


@contextmanager
def stop_on_error() -> Iterator[None]:
    """Turn a UserError or an OSError (the environment failing) into one st.error line and
    stop the page there: never a traceback."""
    try:
        yield
    except (UserError, OSError) as e:
        st.error(escape_markdown(one_line(e)), icon=":material/error:")
        st.stop()


@st.cache_data(max_entries=64, show_spinner=False)
def _json(path: str, stamp: float) -> Any:
    return read_json(Path(path), default=None)


def load_json(path: Path) -> Any:
    """A JSON file (None when missing or unreadable), cached per file version."""
    return _json(str(path), file_stamp(path))


def load_run_summary(run_dir: Path) -> RunSummary:
    """core.runs.workspace.run_summary, recomputed only when the run's report or evaluation changes."""
    paths = RunPaths(run_dir)
    return _summary(str(run_dir), file_stamp(paths.report), file_stamp(paths.evaluation), file_stamp(paths.status))


@st.cache_data(max_entries=128, show_spinner=False)
def _summary(run_dir: str, *stamps: float) -> RunSummary:
    return run_summary(Path(run_dir))


@st.cache_data(max_entries=8, ttl=30, show_spinner="Reading the dataset folder…")
def _dataset_overview(path: str, cache: str | None, stamp: float) -> dict[str, Any]:
    try:
        d = scan_dataset(path, options=ListingOptions(header_cache=Path(cache) if cache else None))
    except DatasetError as e:
        return {"error": str(e)}
    o = describe_dataset(d)
    return {"name": o.name, "path": o.path, "layout": o.layout, "n_images": o.n_images,
            "class_counts": o.class_counts, "n_skipped": o.n_skipped, "skipped": o.skipped,
            "has_patients": o.has_patients, "overview": o}


def dataset_overview(path: Path, workspace: Path | None = None) -> dict[str, Any]:
    """Name, layout, image and class counts of a dataset folder (and, under "overview", its
    core.data.overview.DatasetOverview: patients, views, study years), or {"error": one line}.

    `workspace`: where the DICOM headers read for it are cached (an existing workspace
    folder; None: not cached).
    """
    cache = str(workspace / HEADER_CACHE) if workspace is not None and workspace.is_dir() else None
    return _dataset_overview(str(path), cache, file_stamp(path) + file_stamp(path / "manifest.csv"))


def patient_names_key(ws: Workspace) -> bytes:
    """The workspace's key for showing patients (core.data.patient_ids): every page and
    download shows `display_patient(id, key)`, never the id."""
    return patient_key(ws.root)


def runs_table(ws: Workspace) -> pd.DataFrame:
    """One row per run (core.runs.workspace.run_summary), newest first."""
    return pd.DataFrame([load_run_summary(r).to_dict() for r in list_runs(ws.runs_dir)])


# ---- small widgets -----------------------------------------------------------------------

def format_seconds(seconds: float | None) -> str:
    """90 -> '1 min 30 s'; None -> '—'."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "—"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def progress_line(run_dir: Path) -> tuple[float, str]:
    """Fraction done and one line (state, epoch, step, ETA) for a run's progress bar."""
    status = read_status(run_dir)
    state = status.get("state", "new")
    step, total = status.get("step") or 0, status.get("total") or 0
    if state in ("embedding", "evaluating", "finished"):
        fraction = 1.0
    else:
        fraction = min(step / total, 1.0) if total else 0.0
    parts = [state]
    if status.get("epochs"):
        parts.append(f"epoch {status.get('epoch', 0)}/{status['epochs']}")
    if total and state == "running":
        parts.append(f"step {step}/{total}")
        parts.append(f"ETA {format_seconds(status.get('eta_s'))}")
    if state == "starting":
        parts.append("reading images")
    if status.get("error"):
        parts.append(f"error: {status['error']}")
    return fraction, " · ".join(parts)


def metrics_frame(run_dir: Path) -> pd.DataFrame:
    """metrics.jsonl as a table: epoch, train_loss, val_loss, lr, seconds, images_per_s."""
    return pd.DataFrame(read_jsonl(RunPaths(run_dir).metrics))


def pending_pairs(ws: Workspace, run_dir: Path) -> int | None:
    """Flagged duplicate pairs of the run that no reviewer has judged yet; None if unknown."""
    from core.review import pending_count

    return pending_count(run_dir, ws.reviews_db)


def flash(message: str | None = None) -> None:
    """Keep a success message across st.rerun() (call with a message), or show it (without)."""
    if message is not None:
        st.session_state["cxr_flash"] = message
    elif st.session_state.get("cxr_flash"):
        st.success(st.session_state.pop("cxr_flash"))
