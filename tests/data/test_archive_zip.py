"""Unpacking an uploaded zip: class folders in, traversal, bombs and symlinks out."""

from __future__ import annotations

import io
import stat
import warnings
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from core.data.dataset import scan_dataset
from core.data.upload import UploadError, dataset_dir_for, extract_dataset_zip


def _png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (8, 8), value).save(buf, format="PNG")
    return buf.getvalue()


def _zip(entries: dict[str, bytes], symlinks: dict[str, str] | None = None) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are written on purpose
        for name, data in entries.items():
            z.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, target)
    buf.seek(0)
    return buf


CLASSES = {f"{label}/{i}.png": _png(40 * i) for label in ("Normal", "COVID") for i in range(3)}


def _nothing_left(parent: Path) -> bool:
    return not parent.exists() or not any(parent.iterdir())


def test_class_folders_become_a_dataset(tmp_path: Path) -> None:
    out = extract_dataset_zip(_zip(CLASSES), tmp_path / "ds")
    assert out.root == tmp_path / "ds" and out.n_files == 6 and out.skipped == ()
    assert out.n_bytes == sum(len(b) for b in CLASSES.values())
    assert scan_dataset(out.root).class_counts() == {"COVID": 3, "Normal": 3}


def test_one_wrapping_folder_is_the_dataset_root(tmp_path: Path) -> None:
    wrapped = {f"chest/{name}": data for name, data in CLASSES.items()}
    wrapped["__MACOSX/chest/._0.png"] = b"junk"
    wrapped["chest/.DS_Store"] = b"junk"
    out = extract_dataset_zip(_zip(wrapped), tmp_path / "ds")
    assert out.root == tmp_path / "ds" / "chest"
    assert sorted(out.skipped) == ["__MACOSX/chest/._0.png", "chest/.DS_Store"]
    assert not (tmp_path / "ds" / "__MACOSX").exists()
    assert scan_dataset(out.root).class_counts() == {"COVID": 3, "Normal": 3}


@pytest.mark.parametrize("name", ["../evil.png", "Normal/../../evil.png", "/etc/evil.png",
                                  "C:/evil.png", "..\\evil.png"])
def test_names_leaving_the_folder_refuse_the_archive(tmp_path: Path, name: str) -> None:
    with pytest.raises(UploadError, match="refused"):
        extract_dataset_zip(_zip({**CLASSES, name: b"x"}), tmp_path / "sub" / "ds")
    assert _nothing_left(tmp_path / "sub")
    assert not (tmp_path / "evil.png").exists()


def test_symlinks_are_skipped(tmp_path: Path) -> None:
    out = extract_dataset_zip(_zip(CLASSES, symlinks={"Normal/link.png": "/etc/passwd"}), tmp_path / "ds")
    assert out.skipped == ("Normal/link.png",)
    assert not (out.root / "Normal" / "link.png").exists()


def test_zip_bomb_is_refused_before_writing(tmp_path: Path) -> None:
    bomb = _zip({"Normal/a.png": b"\0" * 5_000_000, "COVID/b.png": b"\0" * 5_000_000})
    assert len(bomb.getvalue()) < 100_000  # the point of a bomb: tiny archive, huge content
    with pytest.raises(UploadError, match="more than 8 MB"):
        extract_dataset_zip(bomb, tmp_path / "sub" / "ds", max_bytes=8_000_000)
    assert _nothing_left(tmp_path / "sub")


def test_too_many_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UploadError, match="more than 5 files"):
        extract_dataset_zip(_zip(CLASSES), tmp_path / "ds", max_files=5)


def test_bad_archives_give_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(UploadError, match="not a readable zip"):
        extract_dataset_zip(io.BytesIO(b"PK not really a zip"), tmp_path / "a")
    with pytest.raises(UploadError, match="no files"):
        extract_dataset_zip(_zip({}), tmp_path / "b")
    dup = _zip({"Normal/a.png": b"1"})
    with zipfile.ZipFile(dup, "a") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z.writestr("Normal/a.png", b"2")
    dup.seek(0)
    with pytest.raises(UploadError, match="twice"):
        extract_dataset_zip(dup, tmp_path / "c")
    (tmp_path / "d").mkdir()
    with pytest.raises(UploadError, match="already exists"):
        extract_dataset_zip(_zip(CLASSES), tmp_path / "d")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_dataset_dir_for_names_a_new_folder(tmp_path: Path) -> None:
    assert dataset_dir_for(tmp_path, "My Chest X-rays!.zip") == tmp_path / "My-Chest-X-rays"
    (tmp_path / "chest").mkdir()
    assert dataset_dir_for(tmp_path, "chest.zip") == tmp_path / "chest-2"
    assert dataset_dir_for(tmp_path, "../../!!!.zip") == tmp_path / "upload"
