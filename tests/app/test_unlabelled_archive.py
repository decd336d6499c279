"""The app on an unlabelled archive (AppTest): a run trained tiny on the nested DICOM tree of
tests/archives.py, whose PatientIDs are hospital numbers (MRN...) that no path holds.

Home shows what the archive has instead of a class table; the Map colours by what the run
has and never by a label it does not have; Search and Duplicates work; and no page, no
download shows a raw PatientID: patients appear as keyed names (core.data.patient_ids).
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from core.data.dataset import scan_dataset
from core.data.overview import describe_dataset
from core.data.patient_ids import display_patient, patient_key
from core.embed.embeddings import Embeddings
from core.embed.projection import cached_projection
from core.runs.views import hits_csv, selection_csv
from tests.archives import dicom_tree
from tests.page_helpers import APP, open_page


def _mrn(folder_id: str) -> str:
    return f"MRN{4711000 + int(folder_id[4:])}"


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """A workspace whose dataset is the DICOM tree (PatientIDs rewritten to MRNs) and whose
    active run is trained tiny on it, with a duplicate search. Returns (root, run, raw ids)."""
    import pydicom

    from core.config import make_run_config
    from core.duplicates.search import run_duplicates
    from core.runs.pipeline import train_run
    from core.runs.workspace import Workspace

    root = tmp_path_factory.mktemp("archive_ws")
    ws = Workspace(root)
    tree = dicom_tree(ws.datasets_dir / "hospital")
    raw: set[str] = set()
    for path in sorted(tree.root.rglob("*.dcm")):
        try:
            ds = pydicom.dcmread(path)
        except Exception:  # the corrupt file
            continue
        if "PatientID" in ds:
            ds.PatientID = _mrn(str(ds.PatientID))
            raw.add(ds.PatientID)
            ds.save_as(path)
    run = ws.runs_dir / "archive"
    train_run(make_run_config(str(tree.root), "tiny"), run)  # ~20 s on 2 CPU cores
    run_duplicates(run, 0.9)
    cached_projection(run, "tsne", 30, 0, "all")
    ws.update(dataset=str(tree.root), active_run=str(run))
    assert raw and any(Embeddings.load(run).patients)
    return root, run, raw


@pytest.fixture
def archive_ws(archive, monkeypatch):
    monkeypatch.setenv("CXR_WORKSPACE", str(archive[0]))
    return archive


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _table(at: AppTest, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_home_shows_films_patients_views_and_skipped_for_the_dicom_tree(archive_ws):
    root, _, _ = archive_ws
    at = open_page("pages/home.py")
    o = describe_dataset(scan_dataset(json.loads((root / "workspace.json").read_text())["dataset"]))
    metrics = _metrics(at)
    assert "Classes" not in metrics
    assert metrics["Films"] == f"{o.n_images:,}"
    assert metrics["Patients"] == "5"  # HOSP00000..HOSP00004; NOID and the corrupt file have none
    assert metrics["Views"] == "1"  # PA; the lateral is skipped
    assert metrics["Files skipped"] == str(o.n_skipped)
    views = _table(at, "view")
    assert dict(zip(views["view"], views["films"], strict=True)) == o.views
    skipped = _table(at, "reason")
    reasons = dict(zip(skipped["file"], skipped["reason"], strict=True))
    assert reasons["HOSP00001/study0/series2/img0.dcm"].startswith("lateral view")
    assert reasons["HOSP00003/study0/series2/img0.dcm"].startswith("not a radiograph")
    assert any("2020 (" in c.value and "2022 (" in c.value for c in at.caption)  # study years


def test_home_shows_no_table_of_empty_label_metrics_for_an_unlabelled_run(archive_ws):
    """Found walking the app on cxr-kermany without its manifest: the model table read None in
    every cell (this run, raw pixels, random init) since no label metric could be measured."""
    at = open_page("pages/home.py")
    assert not [d for d in at.dataframe if "P@5" in d.value.columns], "a table of label metrics without labels"
    assert any("No label metrics" in c.value for c in at.caption)
    assert _metrics(at)["P@5"] == "—"


def test_home_keeps_the_class_table_for_the_demo_set(tiny_workspace):
    at = open_page("pages/home.py")
    metrics = _metrics(at)
    assert metrics["Classes"] == "4" and "Films" not in metrics
    table = at.dataframe[0].value
    assert list(table.columns) == ["class", "images"] and len(table) == 4


def _sizes(at) -> dict[str, int]:
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    return {t["name"]: len(t["customdata"]) for t in figure["data"]}


def test_map_colours_by_what_the_unlabelled_run_has_and_never_by_label(archive_ws):
    _, run, raw = archive_ws
    at = open_page("pages/map.py")
    options = at.selectbox(key="map_colour").options
    assert "label" not in options
    assert {"patient", "view", "folder", "study year", "split", "duplicate group"} <= set(options)
    assert not any("by class" in m.value for m in at.markdown)
    assert any("No labels in this run" in c.value for c in at.caption)
    at.selectbox(key="map_colour").set_value("patient").run()
    assert not at.exception
    emb = Embeddings.load(run)
    key = patient_key(archive_ws[0])
    names = {display_patient(p, key) for p in emb.patients if p}
    sizes = _sizes(at)
    assert set(sizes) == names | {"(none)"}  # NOID's films have no patient
    assert sum(sizes.values()) == len(emb)
    at.selectbox(key="map_colour").set_value("folder").run()
    assert set(_sizes(at)) == {p.split("/")[0] for p in emb.paths}


def _all_bytes(at: AppTest) -> list[bytes]:
    """Every element of the page as serialised protobuf (text, tables as Arrow, charts)."""
    out, stack = [], [at._tree]
    while stack:
        node = stack.pop()
        proto = getattr(node, "proto", None)
        if proto is not None and hasattr(proto, "SerializeToString"):
            out.append(proto.SerializeToString())
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            stack.extend(children.values())
    return out


@pytest.fixture
def downloads(monkeypatch):
    """The bytes of every file a page hands the browser (downloads, images)."""
    seen: list[bytes] = []
    add = MediaFileManager.add

    def recording(self, data, *args, **kwargs):
        if isinstance(data, bytes | bytearray):
            seen.append(bytes(data))
        return add(self, data, *args, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add", recording)
    return seen


def _leaks(chunks: list[bytes], raw: set[str]) -> list[str]:
    return sorted({r for r in raw for c in chunks if r.encode() in c})


def test_no_page_or_download_shows_a_raw_patient_id(archive_ws, downloads):
    root, run, raw = archive_ws
    key = patient_key(root)
    emb = Embeddings.load(run)
    seen: list[bytes] = []
    for page in ("pages/home.py", "pages/train.py"):
        seen += _all_bytes(open_page(page))

    at = open_page("pages/map.py")
    if "patient" in at.selectbox(key="map_colour").options:
        at.selectbox(key="map_colour").set_value("patient").run()
    with_patient = next(i for i, p in enumerate(emb.patients) if p)
    at.session_state["map_focus"] = with_patient
    at.run()
    assert not at.exception
    seen += _all_bytes(at)

    at = open_page("pages/search.py")
    at.radio(key="search_source").set_value("Pick from the dataset").run()
    at.selectbox(key="search_pick_path").set_value(emb.paths[with_patient]).run()
    at.toggle(key="search_hide_patient").set_value(True).run()
    assert not at.exception
    page = _all_bytes(at)
    assert _leaks(page, raw) == [], "Search shows a raw PatientID"
    text = b"".join(page).replace(b"\\", b"")  # captions escape Markdown
    hidden = display_patient(emb.patients[with_patient], key)
    assert f"patient ({hidden}) hidden".encode() in text  # the keyed name shows, not the id
    assert any(t.value.count("patient pt-") for t in at.text)
    seen += page

    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/duplicates.py").run()
    at.sidebar.text_input(key="dup_reviewer").input("ann").run()
    assert not at.exception
    seen += _all_bytes(at)
    for section in ("Leakage", "Export"):
        at.segmented_control(key="dup_section").set_value(section).run()
        assert not at.exception
        seen += _all_bytes(at)

    assert downloads, "the pages should have handed out files"
    assert _leaks(seen, raw) == [], "a page shows a raw PatientID"
    assert _leaks(downloads, raw) == [], "a download holds a raw PatientID"
    # the exports themselves, on every film of the run
    from core.retrieval.search import Hit

    hits = [Hit(i + 1, p, lab, 0.5, s, i, pid) for i, (p, lab, s, pid) in
            enumerate(zip(emb.paths, emb.labels, emb.splits, emb.patients, strict=True))]
    for data in (hits_csv(hits, "q", key), selection_csv(emb, range(len(emb)), key)):
        assert _leaks([data], raw) == []
        shown = {r["patient"] for r in csv.DictReader(io.StringIO(data.decode()))}
        assert shown == {display_patient(p, key) for p in emb.patients}
    # internal files keep the real ids: the splits must stay patient-disjoint
    assert raw <= set(emb.patients)


def test_search_and_duplicates_work_on_the_unlabelled_run(archive_ws):
    at = open_page("pages/search.py")
    at.radio(key="search_source").set_value("Pick from the dataset").run()
    assert not at.exception
    assert not at.selectbox(key="search_pick_path").options == []
    assert "Class" not in [s.label for s in at.selectbox]  # no labels to pick a class by
    assert not any(m.value.startswith("**Label vote") for m in at.markdown)
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/duplicates.py").run()
    at.sidebar.text_input(key="dup_reviewer").input("ann").run()
    assert not at.exception
    assert np.any([m.value.startswith("**Pair") for m in at.markdown])
