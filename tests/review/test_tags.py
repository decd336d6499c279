"""Tags and saved views: append-only history, bulk changes, names checked, two writers, bad files."""

from __future__ import annotations

import multiprocessing as mp
import os
import sqlite3

import pytest

from core.review import ReviewStore
from core.review.tags import MAX_TAG, TagError, TagStore, check_tag


@pytest.fixture
def tags(tmp_path):
    return TagStore(tmp_path / "reviews.sqlite", dataset="demo")


def test_the_latest_row_per_film_and_tag_decides(tags):
    tags.add(["a.png", "b.png"], "blurry", reviewer="ann")
    tags.add(["a.png"], "rotated", reviewer="ann")
    tags.remove(["a.png"], "blurry", reviewer="bob")
    tags.add(["a.png"], "blurry", reviewer="cat")  # put back: the latest row is an add again
    tags.remove(["b.png"], "blurry", reviewer="cat")
    assert tags.current() == {"a.png": ["blurry", "rotated"]}
    assert tags.counts() == {"blurry": 1, "rotated": 1}
    history = tags.history("a.png")
    assert [(e.tag, e.action, e.reviewer) for e in history] == [
        ("blurry", "add", "ann"), ("rotated", "add", "ann"), ("blurry", "remove", "bob"),
        ("blurry", "add", "cat")]
    assert all(e.created > 0 and e.batch for e in history)


def test_hand_made_history_is_read_as_written(tmp_path):
    """Rows written by another program (or an older version) decide by id, not by time."""
    path = tmp_path / "reviews.sqlite"
    store = TagStore(path, "demo")
    store.add(["x.png"], "seed", reviewer="ann")  # creates the tables
    with sqlite3.connect(path) as db:
        rows = [("demo", "c.png", "lung", "ann", 5.0, "add", "b1"),
                ("demo", "c.png", "lung", "bob", 1.0, "remove", "b2"),  # later row, older clock
                ("demo", "d.png", "lung", "bob", 2.0, "add", "b3"),
                ("other", "c.png", "lung", "bob", 2.0, "add", "b4")]  # another dataset
        db.executemany("INSERT INTO tags (dataset, path, tag, reviewer, created, action, batch) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    assert store.current() == {"d.png": ["lung"], "x.png": ["seed"]}
    assert store.films_with("lung") == {"d.png"}
    assert TagStore(path, "other").current() == {"c.png": ["lung"]}


def test_bulk_add_then_remove_is_one_batch_each_and_skips_no_ops(tags):
    films = [f"f{i:03d}.png" for i in range(50)]
    added = tags.add(films + films[:5], "review later", reviewer="ann")  # repeats count once
    assert len(added) == 50 and len({e.batch for e in added}) == 1
    assert tags.films_with("review later") == set(films)
    assert tags.add(films[:10], "review later", reviewer="bob") == []  # they carry it already
    removed = tags.remove(films[:20] + ["never-tagged.png"], "review later", reviewer="bob")
    assert [e.path for e in removed] == films[:20] and len({e.batch for e in removed}) == 1
    assert tags.films_with("review later") == set(films[20:])
    assert len(tags.history()) == 70


def test_a_failing_bulk_write_leaves_nothing(tmp_path):
    """All films or none: a row refused half-way through rolls the whole batch back."""
    path = tmp_path / "reviews.sqlite"
    tags = TagStore(path, "demo")
    tags.add(["a.png"], "t", reviewer="ann")
    with sqlite3.connect(path) as db:  # the third film's row fails, after two were inserted
        db.execute("CREATE TRIGGER refuse BEFORE INSERT ON tags WHEN NEW.path = 'e.png' "
                   "BEGIN SELECT RAISE(ABORT, 'disk gave up'); END")
    with pytest.raises(TagError, match="disk gave up"):
        tags.add(["c.png", "d.png", "e.png"], "t", reviewer="ann")
    assert tags.current() == {"a.png": ["t"]}
    assert len(tags.history()) == 1


@pytest.mark.parametrize("bad, why", [
    ("", "enter a tag"), ("   ", "enter a tag"), ("x" * (MAX_TAG + 1), "longer than 40"),
    ("two\nlines", "control character"), ("tab\there", "control character"),
    ("bell\x07", "control character"),
])
def test_tag_names_are_checked(tags, bad, why):
    with pytest.raises(TagError, match=why):
        tags.add(["a.png"], bad, reviewer="ann")
    assert tags.history() == []


def test_tag_names_kept_as_typed_without_outer_spaces(tags):
    assert check_tag("  Pleural effusion?  ") == "Pleural effusion?"
    assert check_tag("x" * MAX_TAG) == "x" * MAX_TAG
    tags.add(["a.png"], " ünïcode ok ", reviewer="ann")
    assert tags.current() == {"a.png": ["ünïcode ok"]}
    with pytest.raises(TagError, match="reviewer name before tagging"):
        tags.add(["a.png"], "x", reviewer="  ")


def test_tags_share_the_verdicts_database(tmp_path):
    path = tmp_path / "reviews.sqlite"
    verdicts = ReviewStore(path, "demo")
    verdicts.record("a.png", "b.png", "skip", reviewer="ann")
    tags = TagStore(path, "demo")
    assert tags.current() == {}  # the file exists, no tag table yet
    tags.add(["a.png"], "t", reviewer="ann")
    assert len(ReviewStore(path, "demo").current()) == 1
    assert verdicts.integrity_ok()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_saved_views_replace_and_delete(tags):
    assert tags.views() == {}
    tags.save_view("pneumonia test", {"label": ["pneumonia"], "split": ["test"]}, reviewer="ann")
    tags.save_view("blurry", {"tag": ["blurry"]}, reviewer="ann")
    tags.save_view("pneumonia test", {"label": ["pneumonia"]}, reviewer="bob")  # replaced
    views = tags.views()
    assert list(views) == ["blurry", "pneumonia test"]
    assert views["pneumonia test"].filters == {"label": ["pneumonia"]}
    assert views["pneumonia test"].reviewer == "bob"
    tags.delete_view("blurry", reviewer="bob")
    assert list(tags.views()) == ["pneumonia test"]
    with pytest.raises(TagError, match="not plain data"):
        tags.save_view("odd", {"x": object()}, reviewer="ann")
    with pytest.raises(TagError, match="enter a view name"):
        tags.save_view(" ", {}, reviewer="ann")


def test_not_a_database_is_a_one_line_error(tmp_path):
    path = tmp_path / "r.sqlite"
    path.write_bytes(b"this is not SQLite " * 200)
    store = TagStore(path, "demo")
    for call in (store.current, lambda: store.add(["a"], "t", reviewer="ann"), store.views):
        with pytest.raises(TagError, match=r"review database .*r\.sqlite: file is not a database") as e:
            call()
        assert "\n" not in str(e.value)
    assert path.read_bytes() == b"this is not SQLite " * 200  # nothing overwritten


def test_a_read_only_file_system_is_named(tmp_path, monkeypatch):
    from core.review import database as database_module  # where the review database is opened

    path = tmp_path / "r.sqlite"
    path.mkdir()  # SQLite cannot open it: "unable to open database file"
    with pytest.raises(TagError, match="unable to open database file"):
        TagStore(path, "demo").add(["a"], "t", reviewer="ann")
    flags = os.statvfs(tmp_path)

    class ReadOnly:
        f_flag = flags.f_flag | os.ST_RDONLY

    monkeypatch.setattr(database_module.os, "statvfs", lambda folder: ReadOnly)
    with pytest.raises(TagError, match="the file system is read-only: tags cannot be read or stored"):
        TagStore(path, "demo").add(["a"], "t", reviewer="ann")


def _writer(path: str, reviewer: str, n: int, start) -> None:
    store = TagStore(path, "demo")
    start.wait()
    for i in range(n):
        store.add([f"{reviewer}-{i:03d}-{j}.png" for j in range(3)], reviewer, reviewer=reviewer)
        store.add([f"shared-{i:03d}.png"], "both", reviewer=reviewer)


def test_two_processes_tagging_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / "r.sqlite")
    TagStore(path, "demo").add(["seed.png"], "seed", reviewer="ann")
    ctx = mp.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(path, name, 30, start)) for name in ("ann", "bob")]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = TagStore(path, "demo")
    assert store.counts() == {"ann": 90, "bob": 90, "both": 30, "seed": 1}
    # each shared film was added once: the second writer saw it carried, inside its transaction
    assert sum(e.tag == "both" for e in store.history()) == 30
