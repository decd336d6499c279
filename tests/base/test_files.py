"""The one CSV writer: header, rows as sequences or mappings, Unix line endings, atomic."""

from __future__ import annotations

import csv

from core.files import atomic_write_csv, csv_bytes


def test_csv_bytes_from_sequences_and_mappings():
    assert csv_bytes(["a", "b"], [(1, "x,y"), ("é", "")]) == 'a,b\n1,"x,y"\né,\n'.encode()
    # mappings: columns in header order, missing keys empty, other keys ignored
    assert csv_bytes(["a", "b"], [{"b": 2, "a": 1, "c": 3}, {"a": 4}]) == b"a,b\n1,2\n4,\n"
    assert csv_bytes(["a"], []) == b"a\n"


def test_atomic_write_csv_leaves_no_temp_file(tmp_path):
    path = tmp_path / "sub" / "rows.csv"
    atomic_write_csv(path, ["path", "reason"], [("x.png", "truncated")])
    with path.open(newline="", encoding="utf-8") as f:
        assert list(csv.DictReader(f)) == [{"path": "x.png", "reason": "truncated"}]
    assert [p.name for p in path.parent.iterdir()] == ["rows.csv"]


def test_a_full_disk_inside_a_writer_names_the_file_and_leaves_no_temp(tmp_path):
    """torch.save met ENOSPC and raised an OSError naming no file: 'error: the disk is full'."""
    import errno

    import pytest

    from core.errors import one_line
    from core.files import atomic_write_with

    def full(tmp):
        tmp.write_bytes(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    target = tmp_path / "run" / "last.pt"
    with pytest.raises(OSError) as caught:
        atomic_write_with(target, full)
    assert one_line(caught.value) == f"the disk is full: {target}"
    assert list(target.parent.iterdir()) == []


def _with_umask(mask: int, write) -> int:
    """The mode bits of the file `write()` creates under umask `mask` (restored after)."""
    import os

    old = os.umask(mask)
    try:
        return write().stat().st_mode & 0o777
    finally:
        os.umask(old)


def test_atomic_writes_give_the_mode_a_plain_open_gives(tmp_path):
    """mkstemp made every atomic file (and shard) 0600: the app and the CLI running as two
    users of one group could not read each other's runs. A plain open() gives 0666 & ~umask."""
    import os

    from core.files import (
        atomic_write_bytes,
        atomic_write_json,
        atomic_write_with,
        temp_path,
        try_lock,
    )

    def bytes_file(name):
        def write():
            atomic_write_bytes(tmp_path / name, b"x")
            return tmp_path / name
        return write

    def with_file(name):
        def write():
            atomic_write_with(tmp_path / name, lambda tmp: tmp.write_bytes(b"y"))
            return tmp_path / name
        return write

    for mask, want in ((0o022, 0o644), (0o002, 0o664), (0o077, 0o600)):
        assert _with_umask(mask, bytes_file(f"b{mask}")) == want
        assert _with_umask(mask, with_file(f"w{mask}")) == want
        assert _with_umask(mask, lambda m=mask: (atomic_write_json(tmp_path / f"j{m}.json", {}),
                                                 tmp_path / f"j{m}.json")[1]) == want
        assert _with_umask(mask, lambda m=mask: temp_path(tmp_path / f"t{m}")) == want
    plain = tmp_path / "plain"
    assert _with_umask(0o002, lambda: (plain.write_bytes(b""), plain)[1]) == 0o664
    # a lock file too: under umask 002 the group's other user can open it to take the lock
    def lock_file():
        os.close(try_lock(tmp_path / "run.lock"))
        return tmp_path / "run.lock"
    assert _with_umask(0o002, lock_file) == 0o664
    # replacing an existing file gives the mode anew; two temp names beside one file differ
    assert _with_umask(0o022, bytes_file("b18")) == 0o644
    assert temp_path(tmp_path / "again") != temp_path(tmp_path / "again")
