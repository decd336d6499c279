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
