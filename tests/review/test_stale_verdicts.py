"""A verdict lands on the pair the reviewer saw, or is refused with one line and a refresh."""

from __future__ import annotations

import pytest

from core.review.store import STALE, ReviewError, ReviewStore, StaleVerdict


@pytest.fixture
def store(tmp_path) -> ReviewStore:
    return ReviewStore(tmp_path / "reviews.sqlite", dataset="d")


def test_a_verdict_on_a_pair_that_moved_on_is_refused(store):
    seen = store.state("a.png", "b.png")
    assert seen == 0
    first = store.record("a.png", "b.png", "duplicate", kind="same_image", reviewer="ann", seen=seen)
    assert store.state("b.png", "a.png") == first.id
    with pytest.raises(StaleVerdict, match="changed since you opened it"):
        store.record("a.png", "b.png", "not_duplicate", reviewer="bob", seen=seen)
    assert [v.reviewer for v in store.history()] == ["ann"]
    # seen as it is now: accepted
    store.record("a.png", "b.png", "not_duplicate", reviewer="bob", seen=store.state("a.png", "b.png"))
    assert store.current()[("a.png", "b.png")].reviewer == "bob"


def test_an_undo_in_between_also_moves_the_pair_on(store):
    store.record("a.png", "b.png", "skip", reviewer="ann")
    seen = store.state("a.png", "b.png")
    store.undo_last("ann")
    with pytest.raises(StaleVerdict):
        store.record("a.png", "b.png", "skip", reviewer="bob", seen=seen)


def test_bulk_is_refused_whole_when_one_pair_moved_on(store):
    pairs = [("a.png", "b.png"), ("c.png", "d.png")]
    seen = store.states()
    store.record("c.png", "d.png", "not_duplicate", reviewer="bob")
    with pytest.raises(StaleVerdict):
        store.record_many(pairs, "duplicate", kind="same_image", reviewer="ann", seen=seen)
    assert len(store.history()) == 1
    rows = store.record_many(pairs, "duplicate", kind="same_image", reviewer="ann", seen=store.states())
    assert [(v.path_a, v.path_b) for v in rows] == [("a.png", "b.png")]  # c-d is decided


def test_undo_refuses_when_the_last_action_is_not_the_one_shown(store):
    store.record("a.png", "b.png", "skip", reviewer="ann")
    shown = store.last_action("ann")
    store.record("c.png", "d.png", "skip", reviewer="ann")  # ann's other window
    with pytest.raises(StaleVerdict):
        store.undo_last("ann", seen=shown)
    assert len(store.current()) == 2
    assert [v.path_a for v in store.undo_last("ann", seen=store.last_action("ann"))] == ["c.png"]
    assert store.last_action("nobody") == ""
    assert store.undo_last("nobody", seen="") == []


def test_the_refusal_is_one_line():
    assert "\n" not in STALE


def test_a_bulk_refusal_names_the_pairs_that_changed(store):
    """Issue 28 item 5: the refusal says which of the shown pairs moved on (one line)."""
    pairs = [("a.png", "b.png"), ("c.png", "d.png"), ("e.png", "f.png")]
    seen = {p: store.state(*p) for p in pairs}
    store.record("d.png", "c.png", "not_duplicate", reviewer="bob")
    with pytest.raises(StaleVerdict) as refused:
        store.record_many(pairs, "duplicate", kind="copy", reviewer="ann", seen=seen)
    assert refused.value.changed == [("c.png", "d.png")]
    assert "\n" not in str(refused.value)
    assert "1 of 3 pairs" in str(refused.value) and "c.png · d.png" in str(refused.value)
    assert [v.reviewer for v in store.history()] == ["bob"]


def test_bulk_gives_each_pair_its_own_kind(store):
    """Issue 28 item 5: one batch (one undo), each pair with the kind the search found for it."""
    kinds = {("a.png", "b.png"): "copy", ("d.png", "c.png"): "similar"}
    rows = store.record_many(list(kinds), "duplicate", kinds=kinds, reviewer="ann", seen={})
    assert {(v.path_a, v.path_b): v.kind for v in rows} == {("a.png", "b.png"): "copy",
                                                           ("c.png", "d.png"): "similar"}
    assert len({v.batch for v in rows}) == 1
    with pytest.raises(ReviewError, match="a duplicate needs a kind"):
        store.record_many([("e.png", "f.png")], "duplicate", kinds={("e.png", "f.png"): ""},
                          reviewer="ann")
    with pytest.raises(ReviewError, match="a duplicate needs a kind"):  # a pair the map leaves out
        store.record_many([("e.png", "f.png"), ("g.png", "h.png")], "duplicate",
                          kinds={("e.png", "f.png"): "copy"}, reviewer="ann")
    assert len(store.history()) == 2
