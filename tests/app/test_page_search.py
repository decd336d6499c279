"""Search page through the entry point (AppTest), and its pure helpers: results, warning, errors."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data.display import CT_PRESETS, FILE_DEFAULT, key_tags, window_presets, windowed_pixels
from core.data.imageio import Window, load_image
from core.data.patient_ids import display_patient, patient_key
from core.embed.embeddings import Embeddings
from core.files import atomic_write_json
from core.retrieval.search import Hit
from core.runs.views import hits_csv, label_vote
from pages._images_ui import short_name
from pages._search_ui import QueryError, QueryImage, read_query
from tests import bad_inputs as bi
from tests.page_helpers import copy_workspace, open_page, unescape

RESULT = re.compile(r"^#\d+ · cosine -?\d\.\d{3} · pct \d{1,3}$")  # a grid cell's first line


def _results(at) -> list[str]:
    return [t.value.split("\n")[0] for t in at.text if RESULT.match(t.value.split("\n")[0])]


def _names(at) -> list[str]:
    """The grid's file names (one caption under each thumbnail, cut in the middle when long)."""
    return [unescape(c.value) for c in at.caption if re.search(r"\.(png|jpe?g|dcm)$", unescape(c.value))]


def _all_text(at) -> str:
    parts = [e.value for kind in ("text", "markdown", "caption", "warning", "error", "info")
             for e in at.get(kind)]
    return "\n".join(str(p) for p in parts)


def _pick(at):
    at.radio(key="search_source").set_value("Pick from the dataset").run()
    assert not at.exception, at.exception
    return at


def test_pick_from_dataset_excludes_itself_and_raises_no_copy_warning(tiny_workspace):
    at = _pick(open_page("pages/search.py"))
    emb = Embeddings.load(tiny_workspace.run_dir)
    k = min(10, len(emb) - 1)
    assert at.selectbox(key="search_pick_path").value == emb.paths[0]
    planted = (tiny_workspace.dataset / "duplicates.csv").read_text()
    pick = next(p for p in emb.paths if Path(p).name not in planted)  # not one of the planted copies
    at.selectbox(key="search_pick_path").set_value(pick).run()
    assert len(_results(at)) == k
    assert short_name(Path(pick).name) not in _names(at)
    assert not any("Same radiograph" in w.value for w in at.warning), [w.value for w in at.warning]
    assert "A cosine alone never counts" in _all_text(at)
    assert any(c.value.startswith("Query time ") and "ms (embedding + search)." in c.value for c in at.caption)
    vote = at.dataframe[0].value
    assert vote["votes"].sum() == k and vote["share"].sum() == pytest.approx(1.0)
    at.slider(key="search_k").set_value(3).run()
    assert len(_results(at)) == 3 and not at.exception


def test_calibrated_rule_is_read_from_the_duplicate_search(tiny_workspace, tmp_path, monkeypatch):
    run = copy_workspace(tiny_workspace.root, tiny_workspace.run_dir.name, tmp_path / "ws")
    atomic_write_json(run / "duplicates.json", {
        "method": "auto", "groups": [], "pairs": [], "run": str(run), "data": str(run),
        "estimated_precision": None, "estimated_recall": None, "n_images": 0,
        "rule": {"threshold": -1.0, "hash_threshold": -1}})
    monkeypatch.setenv("CXR_WORKSPACE", str(tmp_path / "ws"))
    at = _pick(open_page("pages/search.py"))
    assert "or the calibrated rule (cosine ≥ -1.0000)" in unescape(_all_text(at))
    assert any("Same radiograph as result #1" in w.value for w in at.warning)  # every cosine passes


def _cells(at) -> list[list[str]]:
    """Each result's lines: headline, label, patient and note lines, then its whole file name
    (the caption under the thumbnail, whose tooltip holds the path when the name is cut)."""
    lines = [t.value.split("\n") for t in at.text if RESULT.match(t.value.split("\n")[0])]
    names = [Path(c.proto.help).name if c.proto.help else unescape(c.value) for c in at.caption
             if re.search(r"\.(png|jpe?g|dcm)$", unescape(c.value))]
    assert len(names) == len(lines), (names, lines)
    return [[*cell, name] for cell, name in zip(lines, names, strict=True)]


def _follow_up(emb: Embeddings) -> int:
    """A row whose patient has another film in the dataset."""
    counts = {p: emb.patients.count(p) for p in emb.patients if p}
    return next(i for i, p in enumerate(emb.patients) if p and counts[p] > 1)


def test_results_show_patients_by_keyed_name_and_hide_the_query_patient(tiny_workspace):
    emb = Embeddings.load(tiny_workspace.run_dir)
    key = patient_key(tiny_workspace.root)  # patients show as keyed names, never the ids
    patient_of = {Path(p).name: display_patient(pid, key)
                  for p, pid in zip(emb.paths, emb.patients, strict=True)}
    q = _follow_up(emb)
    own = display_patient(emb.patients[q], key)
    others = {Path(p).name for i, p in enumerate(emb.paths) if emb.patients[i] == emb.patients[q] and i != q}
    at = _pick(open_page("pages/search.py"))
    at.selectbox(key="search_pick_path").set_value(emb.paths[q]).run()
    at.slider(key="search_k").set_value(len(emb) - 1).run()  # every other image
    cells = _cells(at)
    assert len(cells) == len(emb) - 1 and not at.exception
    for lines in cells:
        assert f"patient {patient_of[lines[-1]]}" in lines, lines
        assert ("same patient" in lines) == (lines[-1] in others), lines  # the ids say so
    assert {lines[-1] for lines in cells} >= others

    at.toggle(key="search_hide_patient").set_value(True).run()
    assert not at.exception
    cells = _cells(at)
    assert len(cells) == len(emb) - 1 - len(others)  # still k hits where the gallery has them
    assert not {lines[-1] for lines in cells} & others
    assert all(f"patient {own}" not in lines for lines in cells)
    assert [int(lines[0].split(" ")[0][1:]) for lines in cells] == list(range(1, len(cells) + 1))
    assert f"Films of the query's patient ({own}) hidden." in unescape(_all_text(at))


def test_find_the_patients_other_films_ranks_by_shared_landmarks(tiny_workspace):
    emb = Embeddings.load(tiny_workspace.run_dir)
    q = _follow_up(emb)
    others = {Path(p).name for i, p in enumerate(emb.paths) if emb.patients[i] == emb.patients[q] and i != q}
    at = _pick(open_page("pages/search.py"))
    at.selectbox(key="search_pick_path").set_value(emb.paths[q]).run()
    at.slider(key="search_k").set_value(5).run()
    assert not any("shared landmarks" in line for lines in _cells(at) for line in lines)
    at.toggle(key="search_priors").set_value(True).run()
    assert not at.exception
    cells = _cells(at)
    shared = [int(next(line for line in lines if line.endswith(" shared landmarks")).split()[0])
              for lines in cells]
    assert len(cells) == 5 and shared == sorted(shared, reverse=True)
    # 64 px phantoms of different patients look alike; still the follow-up makes the top 5
    assert others & {lines[-1] for lines in cells}, (cells, others)
    assert [int(lines[0].split(" ")[0][1:]) for lines in cells] == [1, 2, 3, 4, 5]
    assert "Ranked by shared landmarks" in _all_text(at)


def test_hide_patient_is_off_for_an_upload(tiny_workspace):
    emb = Embeddings.load(tiny_workspace.run_dir)
    data = (tiny_workspace.dataset / emb.paths[_follow_up(emb)]).read_bytes()
    at = open_page("pages/search.py")
    at.file_uploader(key="search_upload").set_value(("query.png", data, "image/png")).run()
    switch = at.toggle(key="search_hide_patient")
    assert switch.disabled and not at.exception
    assert not any("same patient" == line for lines in _cells(at) for line in lines)


def test_a_blank_upload_shares_no_landmarks_and_keeps_the_embeddings_order(tiny_workspace):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (64, 64), 128).save(buf, format="PNG")
    at = open_page("pages/search.py")
    at.file_uploader(key="search_upload").set_value(("blank.png", buf.getvalue(), "image/png")).run()
    plain = [lines[-1] for lines in _cells(at)]
    at.toggle(key="search_priors").set_value(True).run()
    assert not at.exception
    cells = _cells(at)
    assert all("0 shared landmarks" in lines for lines in cells)
    assert [lines[-1] for lines in cells] == plain
    assert "no film shares any with this query" in _all_text(at)


def test_same_patient_hint_where_the_model_is_confident(tiny_workspace, tmp_path, monkeypatch):
    """A prior calibrated on the tiny run with a low bar (it has too few follow-ups for the
    default): exactly the results at or above its threshold carry the hint, with its confidence."""
    from functools import partial

    import core.retrieval.search as search_module
    from core.retrieval.patients import calibrate_same_patient

    loose = partial(calibrate_same_patient, min_pairs=1, target=0.3)
    run = copy_workspace(tiny_workspace.root, tiny_workspace.run_dir.name, tmp_path / "ws")
    prior = loose(Embeddings.load(run))
    assert prior.threshold is not None  # else this test would test nothing
    monkeypatch.setattr(search_module, "calibrate_same_patient", loose)
    monkeypatch.setenv("CXR_WORKSPACE", str(tmp_path / "ws"))
    emb = Embeddings.load(run)
    data = (tiny_workspace.dataset / emb.paths[_follow_up(emb)]).read_bytes()
    at = open_page("pages/search.py")
    at.file_uploader(key="search_upload").set_value(("query.png", data, "image/png")).run()
    at.slider(key="search_k").set_value(len(emb)).run()
    cells = _cells(at)
    assert len(cells) == len(emb) and not at.exception
    hinted = 0
    for lines in cells:
        score = float(lines[0].split("cosine ")[1].split(" ")[0])
        hint = [x for x in lines if x.startswith("same patient")]
        if score >= prior.threshold + 5e-4:  # shown to 3 decimals
            assert len(hint) == 1 and re.fullmatch(r"same patient\? \d{1,3}%", hint[0]), lines
            assert int(hint[0][14:-1]) >= round(100 * prior.target), lines  # confident
            hinted += 1
        elif score < prior.threshold - 5e-4:
            assert not hint, lines
    assert hinted >= 1  # the query's own file scores 1.0
    assert f"shown from cosine {prior.threshold:.3f}" in unescape(_all_text(at))


def test_patients_caption_says_when_the_hint_covers_only_near_identical_films():
    from core.retrieval.patients import SamePatientPrior
    from pages._search_ui import patients_caption_text

    def prior(threshold):
        return SamePatientPrior(np.array([0.5, 1.0]), np.array([0.0, 1.0]), 1380, 50, 0.9, threshold)

    confident = patients_caption_text(prior(0.93), None)
    assert "shown from cosine 0.930" in confident and "1380 held-out neighbour pairs" in confident
    assert "near-identical" not in confident
    copies_only = patients_caption_text(prior(0.9997), "P7")  # the dev run's calibration
    assert copies_only.startswith("Films of the query's patient (P7) hidden.")
    assert "only of near-identical films" in copies_only and "Same patient first" in copies_only
    assert patients_caption_text(prior(None), None) == ""  # no hint at all: nothing to explain


def test_same_patient_note_by_hand():
    from core.retrieval.patients import SamePatientPrior, same_patient_note

    prior = SamePatientPrior(np.array([0.5, 0.9, 1.0]), np.array([0.0, 0.5, 1.0]), 40, 20, 0.5, 0.9)
    assert same_patient_note(prior, 0.95, "P1", "P1") == "same patient"  # the ids decide
    assert same_patient_note(prior, 0.6, "P1", "P1") == "same patient"
    assert same_patient_note(prior, 0.95) == "same patient? 75%"  # interpolated: 0.5 + 0.05 / 0.1 * 0.5
    assert same_patient_note(prior, 0.95, "P2", "P1") == "same patient? 75%, ids differ"
    assert same_patient_note(prior, 0.95, "P2", "") == "same patient? 75%"
    assert same_patient_note(prior, 0.89, "P2", "P1") is None  # below the threshold
    blind = SamePatientPrior(np.zeros(0), np.zeros(0), 0, 0, 0.9, None)
    assert same_patient_note(blind, 1.0) is None


def test_bad_upload_shows_one_line_and_no_results(tiny_workspace, tmp_path):
    at = open_page("pages/search.py")
    text = bi.text_as_png(tmp_path).read_bytes()
    at.file_uploader(key="search_upload").set_value(("notes.png", text, "image/png")).run()
    assert not at.exception
    assert [unescape(e.value) for e in at.error] == [
        "notes.png: contains text, not image data (expected PNG, JPEG, WebP, BMP, TIFF, GIF or DICOM)"]
    assert not _results(at)


def test_a_one_pixel_strip_is_searched_and_shown_without_a_traceback(tiny_workspace):
    """Found walking the app: a 4000 x 1 PNG made the compare view raise (its 1024 x 1 preview
    scaled to 0 px high); the warning named the decoded 2000 x 1, not the file's shape."""
    buf = io.BytesIO()
    Image.fromarray(np.tile(np.arange(4000) % 256, (1, 1)).astype(np.uint8)).save(buf, "PNG")
    at = open_page("pages/search.py")
    at.file_uploader(key="search_upload").set_value(("strip.png", buf.getvalue(), "image/png")).run()
    assert not at.exception, at.exception
    assert _results(at)
    assert any("its shape is 4000 x 1 px" in w.value for w in at.warning), [w.value for w in at.warning]


def test_png_upload_finds_its_own_file(tiny_workspace):
    emb = Embeddings.load(tiny_workspace.run_dir)
    data = (tiny_workspace.dataset / emb.paths[4]).read_bytes()
    at = open_page("pages/search.py")
    at.file_uploader(key="search_upload").set_value(("query.png", data, "image/png")).run()
    assert not at.exception
    assert len(_results(at)) == min(10, len(emb))
    assert any("Same radiograph as result #1" in w.value and "identical pixels" in unescape(w.value)
               for w in at.warning)
    compare = [s for s in at.selectbox if s.label == "Compare the query with result"][0]
    assert compare.value == 1 and "query: query.png" in _all_text(at)


def test_dicom_upload_shows_key_tags_and_window_controls_but_no_patient(tiny_workspace, tmp_path):
    data = bi.dicom_rescale_window(tmp_path).read_bytes()
    at = open_page("pages/search.py")
    at.file_uploader(key="search_upload").set_value(("chest.dcm", data, "application/dicom")).run()
    assert not at.exception
    shown = _all_text(at)
    assert "Modality: DX\nView: PA\nStudy date: 2024-01-02" in shown
    assert "TEST-0001" not in shown and "PatientID" not in shown
    preset = [s for s in at.selectbox if s.label == "Window preset"][0]
    assert preset.options[0] == FILE_DEFAULT and "Lung (−600 / 1500 HU)" not in preset.options  # DX
    preset.set_value("Full range").run()
    assert not at.exception and len(_results(at)) > 0
    centre = [s for s in at.slider if s.label == "Window centre (level)"][0]
    centre.set_value(centre.value + 100.0).run()
    assert not at.exception
    assert [s for s in at.selectbox if s.label == "Window preset"][0].value == "Custom"


# ---- pure helpers -----------------------------------------------------------------------------

@pytest.mark.parametrize("builder", [bi.bomb_png, bi.truncated_png, bi.zero_byte, bi.pdf_as_jpg])
def test_read_query_turns_bad_files_into_one_line(builder, tmp_path):
    path = builder(tmp_path)
    result = read_query(path.read_bytes(), path.name)
    assert isinstance(result, QueryError)
    assert result.message.startswith(f"{path.name}: ") and "\n" not in result.message


def test_read_query_digest_follows_content(tmp_path):
    a = read_query(bi.bmp(tmp_path).read_bytes(), "a.bmp")
    b = read_query(bi.bmp(tmp_path).read_bytes(), "b.bmp")
    assert isinstance(a, QueryImage) and a.digest == b.digest and a.image.raw is None


def test_window_presets_by_modality(tmp_path):
    dx = load_image(bi.dicom_rescale_window(tmp_path))
    presets = window_presets(dx)
    assert list(presets)[:3] == [FILE_DEFAULT, "Full range", "Auto (1st–99th percentile)"]
    lo, hi = float(dx.raw.min()), float(dx.raw.max())  # -1000 and 7190 by hand
    assert (lo, hi) == (-1000.0, 7190.0)
    assert presets["Full range"] == Window((lo + hi) / 2, hi - lo)
    assert not set(CT_PRESETS) & set(presets)
    ct = type(dx)(dx.pixels, dx.raw, dx.window, {**dx.meta, "Modality": "CT"}, "dicom")
    assert set(CT_PRESETS) <= set(window_presets(ct))
    png = load_image(bi.bmp(tmp_path))
    assert window_presets(png) == {}


def test_windowed_pixels_by_hand(tmp_path):
    image = load_image(bi.dicom_rescale_window(tmp_path))
    np.testing.assert_array_equal(windowed_pixels(image, None), image.pixels)
    out = windowed_pixels(image, Window(0.0, 2000.0))  # -1000 -> 0, 0 -> 0.5, >= 1000 -> 1
    assert out[0, 0] == pytest.approx(0.0) and out[3, 3] == pytest.approx(1.0)
    assert image.raw[1, 1] == 0.0 and out[1, 1] == pytest.approx(0.5)
    mono1 = load_image(bi.dicom_mono1(tmp_path))
    flipped = windowed_pixels(mono1, Window(1500.0, 3000.0))
    assert flipped[3, 3] > flipped[0, 0]  # bone (stored low) stays bright


def test_key_tags_show_only_modality_view_and_date():
    meta = {"Modality": "CR", "StudyDate": "20231231", "PatientID": "P1", "PatientName": "Doe^J",
            "Manufacturer": "X"}
    assert key_tags(meta) == [("Modality", "CR"), ("Study date", "2023-12-31")]
    assert key_tags({}) == [] and key_tags({"ViewPosition": " "}) == []


def test_label_vote_counts_and_breaks_ties_by_rank():
    hits = [Hit(1, "a", "B", 0.9), Hit(2, "b", "A", 0.8), Hit(3, "c", "A", 0.7), Hit(4, "d", "B", 0.6),
            Hit(5, "e", "C", 0.5)]
    votes = label_vote(hits)
    assert [(v.label, v.count) for v in votes] == [("B", 2), ("A", 2), ("C", 1)]
    assert votes[0].fraction == pytest.approx(0.4)
    assert label_vote([]) == []


def test_hits_csv_round_trips():
    hits = [Hit(1, "x/a,b.png", "N", 0.123456789, "test", 3)]
    rows = list(csv.DictReader(io.StringIO(hits_csv(hits, "q.dcm", b"k" * 32).decode())))
    assert rows == [{"query": "q.dcm", "rank": "1", "path": "x/a,b.png", "label": "N", "split": "test",
                     "patient": "", "cosine": "0.123457"}]
    with_id = [Hit(1, "a.png", "N", 0.5, patient_id="P7")]
    shown = next(csv.DictReader(io.StringIO(hits_csv(with_id, "q", b"k" * 32).decode())))["patient"]
    assert shown == display_patient("P7", b"k" * 32) and "P7" not in shown  # the keyed name


@pytest.mark.parametrize("damage", ["truncated_index", "deleted_checkpoints", "malformed_embeddings"])
@pytest.mark.parametrize("page", ["pages/search.py", "pages/map.py"])
def test_damaged_run_files_are_one_line_on_the_page(damage, page, tiny_workspace, tmp_path, monkeypatch):
    """Issue 10 case 7: a corrupt index, deleted checkpoints or a malformed embeddings.npy."""
    from core.run_folder import RunPaths

    run = copy_workspace(tiny_workspace.root, tiny_workspace.run_dir.name, tmp_path / "ws")
    paths = RunPaths(run)
    if damage == "truncated_index":
        paths.index.write_bytes(paths.index.read_bytes()[:64])
    elif damage == "deleted_checkpoints":
        for p in (paths.model, paths.best, paths.last):
            p.unlink(missing_ok=True)
    else:
        paths.embeddings.write_bytes(b"\x93NUMPY\x01\x00garbage")
    monkeypatch.setenv("CXR_WORKSPACE", str(tmp_path / "ws"))
    at = open_page(page)
    if page == "pages/map.py" and damage != "malformed_embeddings":
        return  # the map reads the embeddings only
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "\n" not in errors[0], errors


def test_a_uniform_dicom_is_shown_with_one_line_not_a_slider_error(tiny_workspace, tmp_path):
    """Issue 28 item 9: every pixel 1000 made the window slider raise StreamlitInvalidMinMaxError."""
    ds = bi._dicom(np.full((32, 32), 1000, np.uint16), bits=12)
    data = bi._save_dicom(ds, tmp_path / "flat.dcm").read_bytes()
    at = open_page("pages/search.py")
    at.file_uploader(key="search_upload").set_value(("flat.dcm", data, "application/dicom")).run()
    assert not at.exception, at.exception
    assert not [s for s in at.slider if s.label.startswith("Window")]
    notes = [unescape(c.value) for c in at.caption if "flat.dcm" in unescape(c.value)]
    assert notes == ["flat.dcm: every pixel is 1000, so there is no window to set; it is shown "
                     "and searched as it is."], [c.value for c in at.caption]


def test_the_score_profile_follows_films_added_without_a_restart(tiny_workspace, tmp_path,
                                                                 monkeypatch):
    """Percentiles are read against the served set: after `add` they are those of the grown
    set (the page keyed them on the run's old top-level embeddings.npy, which no longer changes)."""
    import shutil

    from core.cli.main import main

    run = copy_workspace(tiny_workspace.root, tiny_workspace.run_dir.name, tmp_path / "ws")
    monkeypatch.setenv("CXR_WORKSPACE", str(tmp_path / "ws"))
    at = _pick(open_page("pages/search.py"))
    before = _results(at)
    new = tmp_path / "ws" / "incoming"
    new.mkdir()
    for i, film in enumerate(sorted(tiny_workspace.dataset.rglob("*.png"))):
        shutil.copy(film, new / f"{i}.png")  # every film arrives again: each best match is 1.0
    assert main(["add", "--run", str(run), "--data", str(new), "--json"]) == 0
    at = _pick(open_page("pages/search.py"))  # the same server process: caches kept
    after = _results(at)
    assert before != after and all(r.endswith("pct 0") for r in after[1:]), (before, after)



def test_short_name_cuts_the_middle_and_keeps_the_end_by_hand():
    assert short_name("person1182_virus_2017.jpeg") == "perso…017.jpeg"  # 5 + 1 + 8 = 14 characters
    assert short_name("NORMAL2-IM-0374-0001-0002.jpeg", 12) == "NORM…02.jpeg"  # 4 + 1 + 7
    assert short_name("IM-0001-0001.jpeg", 17) == "IM-0001-0001.jpeg"  # fits: as it is
    assert short_name("film.png") == "film.png"
