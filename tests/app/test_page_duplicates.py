"""The Duplicates page through the entry point (AppTest): confirm, reject, undo, filters, tabs."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.duplicates import proof, search
from core.duplicates.rules import VerifyRule
from core.duplicates.search import load_result, run_duplicates
from core.review.store import ReviewStore
from core.runs.workspace import Workspace
from tests.page_helpers import unescape

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


@pytest.fixture(scope="module")
def _dup_copy(_tiny_workspace_built, tmp_path_factory):
    """A private copy of the tiny workspace whose run holds a duplicate search (cosine 0.9: the
    verified rule of an auto search can leave a tiny 64 px run with a single pair).

    The search writes duplicates.json into the run, so it must not touch the shared one
    (the Map and Search pages read it).
    """
    from tests.conftest import TinyWorkspace
    from tests.page_helpers import copy_workspace

    src = _tiny_workspace_built
    run = copy_workspace(src.root, src.run_dir.name, tmp_path_factory.mktemp("dup") / "ws")
    # The default verification rule (>= 30 inliers, agreement >= 0.92) was calibrated on real
    # films; a 64 px phantom has too few keypoints for it, and the bulk-copy checks need copies.
    lenient = partial(VerifyRule, min_inliers=20, min_agreement=0.85)
    with pytest.MonkeyPatch.context() as mp:
        for module in (proof, search):
            mp.setattr(module, "VerifyRule", lenient)
        result = run_duplicates(run, 0.9)
    return TinyWorkspace(run.parent.parent, run, src.dataset), result


@pytest.fixture
def dup_ws(_dup_copy, monkeypatch):
    """The copied workspace (CXR_WORKSPACE points at it) with no verdicts yet."""
    ws, result = _dup_copy
    assert load_result(ws.run_dir) is not None
    assert len(result.flagged) >= 2, "the tiny run should flag at least two pairs"
    monkeypatch.setenv("CXR_WORKSPACE", str(ws.root))
    db = Workspace(ws.root).reviews_db
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    yield ws, result, ReviewStore(db, dataset=str(result.data_root))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def _page(reviewer: str | None = "ann") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/duplicates.py").run()
    if reviewer:
        at.sidebar.text_input(key="dup_reviewer").input(reviewer).run()
    assert not at.exception, at.exception
    return at


def _position(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("**Pair"))


def _shown_pair(at: AppTest) -> tuple[str, str]:
    table = next(d.value for d in at.dataframe if list(d.value.columns)[:2] == ["image", "file"])
    return tuple(table["file"])


def test_confirm_then_reject_records_who_what_and_which_model(dup_ws):
    ws, result, store = dup_ws
    at = _page()
    n = len(result.flagged)
    assert _position(at) == f"**Pair 1 of {n}**"
    first = _shown_pair(at)
    at.text_input(key=f"dup_note_{first[0]}|{first[1]}").input("same film").run()
    at.button(key="dup_v_exact").click().run()
    assert not at.exception
    assert _position(at) == f"**Pair 1 of {n - 1}**"
    current = store.current()
    v = current[tuple(sorted(first))]
    assert (v.verdict, v.kind, v.reviewer, v.note, v.run) == ("duplicate", "exact", "ann",
                                                              "same film", ws.run_dir.name)
    assert v.threshold == pytest.approx(result.rule.threshold)
    second = _shown_pair(at)
    at.button(key="dup_v_not").click().run()
    assert store.current()[tuple(sorted(second))].verdict == "not_duplicate"
    if n == 2:
        assert any("No pair left" in s.value for s in at.success)


def test_undo_takes_back_the_last_verdict(dup_ws):
    _, result, store = dup_ws
    at = _page()
    at.button(key="dup_v_copy").click().run()
    assert len(store.current()) == 1
    at.button(key="dup_undo").click().run()
    assert not at.exception
    assert store.current() == {}
    assert [v.verdict for v in store.history()] == ["duplicate", "undo"]
    assert _position(at) == f"**Pair 1 of {len(result.flagged)}**"
    at.button(key="dup_undo").click().run()
    assert any("Nothing of yours to undo" in s.value for s in at.success)


def test_filters_by_status_kind_cross_split_and_score(dup_ws):
    _, result, store = dup_ws
    flagged = sorted(result.flagged, key=lambda p: -p.score)
    store.record(flagged[0].a, flagged[0].b, "duplicate", reviewer="bob", kind="copy")
    store.record(flagged[1].a, flagged[1].b, "not_duplicate", reviewer="bob")
    at = _page()
    at.selectbox(key="dup_status").set_value("duplicate").run()
    assert _position(at) == "**Pair 1 of 1**" and _shown_pair(at) == (flagged[0].a, flagged[0].b)
    at.selectbox(key="dup_status").set_value("not_duplicate").run()
    assert _shown_pair(at) == (flagged[1].a, flagged[1].b)
    at.selectbox(key="dup_status").set_value("any").run()
    at.multiselect(key="dup_kinds").set_value(["similar"]).run()
    assert any("No pair left" in s.value for s in at.success)
    at.multiselect(key="dup_kinds").set_value(["copy"]).run()
    assert _position(at) == "**Pair 1 of 1**"
    at.multiselect(key="dup_kinds").set_value([]).run()
    at.checkbox(key="dup_cross").check().run()
    n_cross = sum(p.cross_split for p in result.flagged)
    if n_cross:
        assert _position(at) == f"**Pair 1 of {n_cross}**"
    else:
        assert any("No pair left" in s.value for s in at.success)
    at.checkbox(key="dup_cross").uncheck().run()
    at.selectbox(key="dup_status").set_value("pending").run()
    at.checkbox(key="dup_flagged").uncheck().run()  # near misses join the queue
    pending = len(result.pairs) - 2
    if not pending:  # no near misses in this tiny run
        assert any("No pair left" in s.value for s in at.success)
        return
    assert _position(at) == f"**Pair 1 of {pending}**"
    top = max(p.score for p in result.pairs if (p.a, p.b) not in {(f.a, f.b) for f in flagged[:2]})
    at.slider(key="dup_score").set_value((min(1.0, round(top, 3) + 0.001), 1.0)).run()
    assert any("No pair left" in s.value for s in at.success)
    assert not at.exception


def test_tabs_render_and_names_stay_out_of_markdown(dup_ws):
    _, result, _ = dup_ws
    at = _page(reviewer=None)
    assert any("Enter your name" in w.value for w in at.warning)
    summary = " ".join(c.value for c in at.caption)
    assert f"{len(result.flagged)} pairs in {len(result.groups)} groups" in summary
    if result.estimated_precision is not None:  # only an auto search estimates it
        assert f"est. precision {result.estimated_precision:.3f}" in summary
    for section, label in (("Calibration", "Suggested threshold"), ("Leakage", "Patients in more than one split")):
        at.button_group(key="dup_section").set_value(section).run()
        assert label in {m.label for m in at.metric} and not at.exception
    # each leaking pair names the split of either side (they differ: that is the leak)
    (leaks,) = [d.value for d in at.dataframe if "split a" in d.value.columns]
    assert len(leaks) == len(result.leakage.cross_split_pairs) > 0
    assert set(leaks["split a"]) | set(leaks["split b"]) <= {"train", "val", "test"}
    assert (leaks["split a"] != leaks["split b"]).all()
    at = _page()
    names = {p.a for p in result.pairs} | {p.b for p in result.pairs}
    for element in list(at.markdown) + list(at.caption):
        assert not any(name in element.value for name in names)


def test_difference_overlay_and_zoom_views(dup_ws):
    at = _page()
    for view in ("Difference", "Overlay"):
        at.button_group(key="dup_view").set_value(view).run()
        assert not at.exception and len(at.get("image")) >= 1  # the view, plus the pair's evidence
    at.button_group(key="dup_view").set_value("Side by side").run()
    at.selectbox(key="dup_zoom").set_value(4).run()
    at.slider(key="dup_cx").set_value(0.2).run()
    assert not at.exception and len(at.get("image")) >= 2  # both films, plus the evidence


def test_two_reviewers_on_one_pair_the_second_verdict_is_refused_not_moved(dup_ws):
    """Issue 10 case 1: B's click must not land on the pair that replaced the one B saw."""
    _, result, store = dup_ws
    a, b = _page("ann"), _page("bob")
    seen = _shown_pair(b)
    assert _shown_pair(a) == seen
    a.button(key="dup_v_exact").click().run()
    assert store.current()[tuple(sorted(seen))].reviewer == "ann"
    b.button(key="dup_v_not").click().run()  # bob has not reloaded: he still sees `seen`
    assert not b.exception
    assert any("changed since you opened it" in e.value for e in b.error)
    # the refusal names the pair, who moved it on, and that the page now shows another pair
    (refusal,) = [unescape(e.value) for e in b.error]
    names = " · ".join(Path(p).name for p in seen)
    assert refusal.startswith(f"Not saved: {names} changed since you opened it (ann marked it duplicate: "), refusal
    assert refusal.endswith("It has left this list of pairs; the page shows the next one."), refusal
    assert [v.reviewer for v in store.history()] == ["ann"]  # nothing stored for bob
    assert _shown_pair(b) != seen  # refreshed: the queue as it is now
    now = _shown_pair(b)
    b.button(key="dup_v_not").click().run()  # now on the pair he sees
    assert store.current()[tuple(sorted(now))].reviewer == "bob"


def test_undo_from_a_stale_window_is_refused(dup_ws):
    _, result, store = dup_ws
    one, two = _page("ann"), _page("ann")  # ann in two windows
    one.button(key="dup_v_skip").click().run()
    two.button(key="dup_undo").click().run()  # window two was shown before that verdict
    assert any("changed since" in e.value for e in two.error)
    assert len(store.current()) == 1
    two.button(key="dup_undo").click().run()  # refreshed: it undoes the verdict it now knows of


def test_grid_judges_ticked_pairs_together_and_undo_takes_them_back(dup_ws):
    _, result, store = dup_ws
    at = _page()
    at.toggle(key="dup_grid").set_value(True).run()
    at.button(key="dup_grid_all").click().run()
    assert not at.exception
    at.button(key="dup_grid_not").click().run()
    assert not at.exception
    assert {v.verdict for v in store.current().values()} == {"not_duplicate"}
    assert len(store.current()) == min(len(result.flagged), 12)
    at.button(key="dup_undo").click().run()
    assert store.current() == {}


def test_stale_pair_message_by_hand():
    from core.review.store import Verdict
    from pages._duplicates_ui import stale_pair_message

    pair = ("Normal/a.png", "COVID-19/b.png")

    def row(verdict: str, kind: str = "") -> Verdict:
        return Verdict(1, "", *sorted(pair), verdict, kind, "", "ann", 0.0, "", None, "x")

    assert stale_pair_message([], pair, True) == (
        "Not saved: a.png · b.png changed since you opened it. It is shown as it is now.")
    said = stale_pair_message([row("duplicate", "copy")], pair, False)
    assert "(ann marked it duplicate: copy (same film, transformed) at " in said
    assert said.endswith("It has left this list of pairs; the page shows the next one.")
    assert "ann marked it not duplicate at" in stale_pair_message([row("not_duplicate")], pair, True)
    assert "ann undid a verdict on it at" in stale_pair_message([row("duplicate"), row("undo")], pair, True)


# ---- issue 28 item 5: bulk verdicts are bound to what was shown ------------------------------

def _copies(result) -> list[tuple[str, str]]:
    copies = [(p.a, p.b) for p in result.flagged if p.kind == "copy"]
    assert len(copies) >= 2, "the tiny run should verify at least two copies"
    return copies


def _ann_pairs(store) -> set[tuple[str, str]]:
    return {k for k, v in store.current().items() if v.reviewer == "ann"}


def test_bulk_copies_confirm_exactly_the_pairs_the_button_counted(dup_ws):
    """The button said N; a pair another reviewer undid meanwhile was confirmed as the N+1st."""
    from core.review.store import pair_key

    _, result, store = dup_ws
    copies = _copies(result)
    store.record(*copies[0], "not_duplicate", reviewer="bob")
    at = _page("ann")
    assert at.button(key="dup_bulk_copies").label == f"Confirm {len(copies) - 1} copies"
    store.undo_last("bob")  # copies[0] is pending again; ann's page has not shown it
    at.button(key="dup_bulk_copies").click().run()
    assert not at.exception, at.exception
    assert _ann_pairs(store) == {pair_key(*c) for c in copies[1:]}


def test_bulk_copies_are_refused_naming_the_shown_pair_that_changed(dup_ws):
    from core.review.store import pair_key

    _, result, store = dup_ws
    copies = _copies(result)
    at = _page("ann")
    assert at.button(key="dup_bulk_copies").label == f"Confirm {len(copies)} copies"
    store.record(*copies[0], "not_duplicate", reviewer="bob")
    at.button(key="dup_bulk_copies").click().run()
    assert not at.exception, at.exception
    errors = [unescape(e.value) for e in at.error]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    names = " · ".join(Path(p).name for p in pair_key(*copies[0]))
    assert errors[0].startswith(f"Not saved: 1 of {len(copies)} pairs changed since they were shown: "
                                f"{names} (bob marked it not duplicate at "), errors
    assert [v.reviewer for v in store.history()] == ["bob"]
    # the page now counts what is pending, and that is what a second click confirms
    assert at.button(key="dup_bulk_copies").label == f"Confirm {len(copies) - 1} copies"
    at.button(key="dup_bulk_copies").click().run()
    assert _ann_pairs(store) == {pair_key(*c) for c in copies[1:]}


def _grid_pairs(at) -> list[tuple[str, str]]:
    return [tuple(c.key.removeprefix("dup_tick_").split("|")) for c in at.checkbox
            if c.key and c.key.startswith("dup_tick_")]


def test_grid_duplicate_records_each_pairs_detected_kind(dup_ws):
    """It recorded the default 'exact copy (same pixels)' on every ticked pair."""
    from core.review.store import pair_key

    _, result, store = dup_ws
    at = _page()
    at.toggle(key="dup_grid").set_value(True).run()
    at.button(key="dup_grid_all").click().run()
    shown = _grid_pairs(at)
    at.button(key="dup_grid_dup").click().run()
    assert not at.exception, at.exception
    found = {pair_key(p.a, p.b): p.kind for p in result.pairs}
    recorded = {k: v.kind for k, v in store.current().items()}
    assert recorded == {pair_key(*p): found[pair_key(*p)] for p in shown}
    assert {"copy", "similar"} <= set(recorded.values()) or len(set(found.values())) == 1


def test_grid_verdicts_are_refused_naming_a_ticked_pair_that_changed(dup_ws):
    _, result, store = dup_ws
    at = _page()
    at.toggle(key="dup_grid").set_value(True).run()
    at.button(key="dup_grid_all").click().run()
    a, b = _grid_pairs(at)[1]
    store.record(a, b, "skip", reviewer="bob")
    at.button(key="dup_grid_not").click().run()
    assert not at.exception, at.exception
    errors = [unescape(e.value) for e in at.error]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    assert "changed since they were shown" in errors[0] and Path(a).name in errors[0], errors
    assert [v.reviewer for v in store.history()] == ["bob"]


def test_grid_kind_choice_by_hand():
    """Each pair's detected kind, or the kind the reviewer picked; a near miss needs a pick."""
    from core.duplicates.candidates import CandidatePair
    from core.review import QueueItem
    from pages._review_grid_ui import DETECTED, grid_kinds

    def item(a: str, kind: str) -> QueueItem:
        return QueueItem(CandidatePair(a, "z.png", 0, 1, 0.99, 3, False, False, False, bool(kind), kind), None)

    items = [item("a.png", "copy"), item("b.png", "similar")]
    assert grid_kinds(items, DETECTED) == {("a.png", "z.png"): "copy", ("b.png", "z.png"): "similar"}
    assert grid_kinds(items, "same_patient") == dict.fromkeys([("a.png", "z.png"), ("b.png", "z.png")],
                                                              "same_patient")
    refused = grid_kinds([*items, item("c.png", "")], DETECTED)
    assert isinstance(refused, str) and "c.png · z.png" in refused and "\n" not in refused


@pytest.mark.parametrize("damage", [b"\x00garbage{", b"[1, 2]", b'{"pairs": 5, "rule": {}}', b"{}"])
def test_a_damaged_duplicates_json_is_one_line_naming_it(_dup_copy, tmp_path, monkeypatch, damage):
    """Issue 28 item 9: a damaged duplicates.json was a traceback (or, not JSON, 'no search yet')."""
    from tests.page_helpers import copy_workspace

    ws, _ = _dup_copy
    run = copy_workspace(ws.root, ws.run_dir.name, tmp_path / "ws")
    (run / "duplicates.json").write_bytes(damage)
    monkeypatch.setenv("CXR_WORKSPACE", str(tmp_path / "ws"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/duplicates.py").run()
    assert not at.exception, at.exception
    errors = [unescape(e.value) for e in at.error]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    assert errors[0].startswith(f"{run / 'duplicates.json'} is damaged"), errors
    assert at.button(key="dup_start")  # the search can be run again from the page
