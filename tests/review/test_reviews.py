"""The review store: verdicts, changes, undo, history, concurrent writers, restarts, kills."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
import time

import pytest

from core.review.store import ReviewError, ReviewStore, pair_key


@pytest.fixture
def store(tmp_path):
    return ReviewStore(tmp_path / "reviews.sqlite", dataset="demo")


def test_pair_key_is_symmetric():
    assert pair_key("b.png", "a.png") == pair_key("a.png", "b.png") == ("a.png", "b.png")
    with pytest.raises(ReviewError):
        pair_key("a.png", "a.png")


def test_verdict_then_change_keeps_history(store):
    store.record("b.png", "a.png", "duplicate", reviewer="ann", kind="same_image", run="r1",
                 threshold=0.97, note="identical")
    store.record("a.png", "b.png", "not_duplicate", reviewer="bob")
    current = store.current()
    assert list(current) == [("a.png", "b.png")]
    assert current[("a.png", "b.png")].verdict == "not_duplicate"
    history = store.history("a.png", "b.png")
    assert [v.verdict for v in history] == ["duplicate", "not_duplicate"]
    first = history[0]
    assert (first.reviewer, first.kind, first.note, first.run, first.threshold) == \
        ("ann", "exact", "identical", "r1", 0.97)  # a legacy kind is stored as its new name
    assert first.created <= history[1].created


def test_undo_restores_the_previous_verdict_and_keeps_everything(store):
    store.record("a", "b", "duplicate", reviewer="ann", kind="cropped_rotated")
    store.record("a", "b", "not_duplicate", reviewer="ann")
    undone = store.undo_last("ann")
    assert [v.verdict for v in undone] == ["not_duplicate"]
    assert store.current()[("a", "b")].verdict == "duplicate"
    store.undo_last("ann")
    assert store.current() == {}
    assert store.undo_last("ann") == []
    assert [v.verdict for v in store.history()] == ["duplicate", "not_duplicate", "undo", "undo"]


def test_undo_only_touches_the_reviewers_own_verdicts(store):
    store.record("a", "b", "duplicate", reviewer="ann", kind="same_image")
    store.record("c", "d", "skip", reviewer="bob")
    store.undo_last("ann")
    assert set(store.current()) == {("c", "d")}


def test_bulk_confirm_is_one_batch_and_skips_decided_pairs(store):
    store.record("a", "b", "not_duplicate", reviewer="bob")
    rows = store.record_many([("a", "b"), ("c", "d"), ("d", "c"), ("e", "f")], "duplicate",
                             reviewer="ann", kind="same_image")
    assert {(v.path_a, v.path_b) for v in rows} == {("c", "d"), ("e", "f")}
    assert len({v.batch for v in rows}) == 1
    assert store.current()[("a", "b")].verdict == "not_duplicate"
    assert len(store.undo_last("ann")) == 2
    assert set(store.current()) == {("a", "b")}


@pytest.mark.parametrize("verdict, kind, reviewer", [
    ("maybe", "", "ann"), ("duplicate", "", "ann"), ("duplicate", "blurry", "ann"),
    ("skip", "same_image", "ann"), ("skip", "", "  "),
])
def test_bad_verdicts_are_refused(store, verdict, kind, reviewer):
    with pytest.raises(ReviewError):
        store.record("a", "b", verdict, reviewer=reviewer, kind=kind)
    assert store.history() == []


def test_old_databases_read_with_the_new_kinds(tmp_path):
    path = tmp_path / "old.sqlite"
    ReviewStore(path, "d").record("a", "b", "skip", reviewer="ann")
    with sqlite3.connect(path) as db:  # a row as written before the kinds were renamed
        db.execute("INSERT INTO verdicts (dataset, path_a, path_b, verdict, kind, reviewer, created, batch)"
                   " VALUES ('d', 'c', 'e', 'duplicate', 'cropped_rotated', 'bob', 1.0, 'x')")
    store = ReviewStore(path, "d")
    assert store.current()[("c", "e")].kind == "copy"
    store.record("c", "e", "duplicate", reviewer="ann", kind="same_patient")  # a reviewer corrects the kind
    assert store.current()[("c", "e")].kind == "same_patient"
    assert [v.kind for v in store.history("c", "e")] == ["copy", "same_patient"]


def test_datasets_do_not_mix(tmp_path):
    a = ReviewStore(tmp_path / "r.sqlite", dataset="one")
    b = ReviewStore(tmp_path / "r.sqlite", dataset="two")
    a.record("x", "y", "skip", reviewer="ann")
    assert b.current() == {} and len(a.current()) == 1


def test_survives_a_restart(tmp_path):
    path = tmp_path / "r.sqlite"
    ReviewStore(path, "demo").record("a", "b", "duplicate", reviewer="ann", kind="same_image")
    again = ReviewStore(path, "demo")
    assert again.current()[("a", "b")].kind == "exact"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_not_a_database_is_a_one_line_error(tmp_path):
    path = tmp_path / "r.sqlite"
    path.write_bytes(b"this is not SQLite " * 200)
    with pytest.raises(ReviewError, match="not a database"):
        ReviewStore(path, "demo")


def test_a_read_only_file_system_is_named(tmp_path, monkeypatch):
    """On a read-only mount SQLite only says 'unable to open database file' (WAL writes beside
    the file); the message names the cause. Checked for real on a read-only tmpfs (README)."""
    from core.review import database as database_module  # where the review database is opened

    path = tmp_path / "r.sqlite"
    ReviewStore(path, "demo").record("a", "b", "skip", reviewer="ann")
    path.unlink()
    path.mkdir()  # SQLite cannot open it: "unable to open database file"
    with pytest.raises(ReviewError, match="unable to open database file"):
        ReviewStore(path, "demo")
    flags = os.statvfs(tmp_path)

    class ReadOnly:
        f_flag = flags.f_flag | os.ST_RDONLY

    monkeypatch.setattr(database_module.os, "statvfs", lambda folder: ReadOnly)
    with pytest.raises(ReviewError, match="the file system is read-only: verdicts cannot be read or stored"):
        ReviewStore(path, "demo")


def _writer(path: str, reviewer: str, n: int, start) -> None:
    store = ReviewStore(path, "demo")
    start.wait()
    for i in range(n):
        store.record(f"{reviewer}-{i:04d}.png", "z.png", "skip", reviewer=reviewer)


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / "r.sqlite")
    ReviewStore(path, "demo")
    ctx = mp.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(path, name, 60, start)) for name in ("ann", "bob")]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = ReviewStore(path, "demo")
    assert len(store.history()) == 120
    assert len(store.current()) == 120
    assert store.integrity_ok()


def _endless_writer(path: str) -> None:
    store = ReviewStore(path, "demo")
    i = 0
    while True:
        store.record_many([(f"k{i}-{j}.png", "z.png") for j in range(20)], "skip", reviewer="kim")
        i += 1


def test_kill_9_mid_write_leaves_a_sound_database(tmp_path):
    path = str(tmp_path / "r.sqlite")
    ReviewStore(path, "demo")
    proc = mp.get_context("fork").Process(target=_endless_writer, args=(path,))
    proc.start()
    store = ReviewStore(path, "demo")
    deadline = time.time() + 60
    while len(store.history()) < 100 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    assert store.integrity_ok()
    rows = store.history()
    assert len(rows) >= 100 and len(rows) % 20 == 0  # whole batches only
    store.record("a", "b", "skip", reviewer="ann")  # still writable
    assert len(store.history()) == len(rows) + 1
