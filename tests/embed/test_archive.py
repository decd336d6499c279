"""Archive embedding: shards, resume after an interruption, index from shards, refusals."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from core.config import make_run_config
from core.embed.shard_format import ArchiveError, ShardInfo, finished_shards, read_archive_paths
from core.embed.shards import embed_archive, list_archive
from core.index.from_shards import build_index_from_shards
from core.model.checkpoint import save_checkpoint
from core.model.network import build_model
from core.run_folder import RunPaths


class Interrupt(Exception):
    pass


def _make_run(run_dir: Path, data: Path, seed: int = 0) -> Path:
    """A run folder with an untrained tiny model as its best checkpoint (no training needed)."""
    import torch

    config = make_run_config(str(data), "tiny")
    torch.manual_seed(seed)
    save_checkpoint(RunPaths(run_dir).best, build_model(config.model), config, epoch=0)
    return run_dir


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from core.demo.dataset import write_demo_dataset

    root = tmp_path_factory.mktemp("archive")
    data = write_demo_dataset(root / "images", per_class=5, size=48, seed=0,
                              duplicate_fraction=0.0).root
    return data, _make_run(root / "run", data)


def _embed(run: Path, data: Path, out: Path, **kw) -> object:
    return embed_archive(run, data, out, shard_size=6, precision="fp32", workers=0, **kw)


def test_interrupted_run_resumes_without_redoing_shards(archive, tmp_path):
    data, run = archive
    assert len(list_archive(data)) == 20
    full = _embed(run, data, tmp_path / "full")
    assert (full.n_shards, full.n_vectors, full.new_shards) == (4, 20, (0, 1, 2, 3))

    seen: list[ShardInfo] = []

    def stop_after_two(info: ShardInfo) -> None:
        seen.append(info)
        if len(seen) == 2:
            raise Interrupt

    out = tmp_path / "resumed"
    with pytest.raises(Interrupt):
        _embed(run, data, out, on_shard=stop_after_two)
    assert [s.number for s in finished_shards(out)] == [0, 1]
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*")}

    resumed = _embed(run, data, out)
    assert resumed.new_shards == (2, 3)
    assert all((out / name).stat().st_mtime_ns == t for name, t in before.items())
    for a, b in zip(finished_shards(tmp_path / "full"), finished_shards(out), strict=True):
        assert a.paths.read_text() == b.paths.read_text()
        np.testing.assert_array_equal(np.load(a.vectors), np.load(b.vectors))
    assert [s.n_vectors for s in finished_shards(out)] == [6, 6, 6, 2]

    again = _embed(run, data, out)  # nothing left to do
    assert again.new_shards == () and again.n_vectors == 20


def test_index_ids_follow_shard_order(archive, tmp_path):
    data, run = archive
    out = tmp_path / "out"
    _embed(run, data, out)
    paths = read_archive_paths(out)
    assert paths == list_archive(data)
    index = build_index_from_shards(out)
    assert (index.kind, index.ntotal) == ("exact", 20)
    assert (out / "index.faiss").is_file()
    vectors = np.concatenate([np.load(s.vectors) for s in finished_shards(out)])  # (20, D)
    _, ids = index.search(vectors[7], k=1)
    assert ids[0, 0] == 7


def test_new_and_unreadable_files_go_into_new_shards(archive, tmp_path):
    import shutil

    data, run = archive
    copy = tmp_path / "images"
    shutil.copytree(data, copy)
    out = tmp_path / "out"
    _embed(run, copy, out)
    (copy / "Normal" / "zz_broken.png").write_bytes(b"not a png")
    shutil.copy(copy / "Normal" / list_archive(copy / "Normal")[0], copy / "Normal" / "zz_new.png")
    result = _embed(run, copy, out)
    assert result.new_shards == (4,)
    assert (result.n_vectors, result.n_skipped) == (21, 1)
    assert read_archive_paths(out)[-1] == "Normal/zz_new.png"
    assert _embed(run, copy, out).new_shards == ()  # the unreadable file is not retried


def test_refuses_shards_from_another_model(archive, tmp_path):
    data, run = archive
    out = tmp_path / "out"
    _embed(run, data, out)
    other = _make_run(tmp_path / "other_run", data, seed=1)
    with pytest.raises(ArchiveError, match="another model"):
        _embed(other, data, out)


def test_bad_arguments_give_one_line_errors(archive, tmp_path):
    data, run = archive
    with pytest.raises(ArchiveError, match="not found"):
        _embed(run, tmp_path / "missing", tmp_path / "out")
    with pytest.raises(ArchiveError, match="shard size"):
        embed_archive(run, data, tmp_path / "out", shard_size=0)
    with pytest.raises(ArchiveError, match="no embedded shards"):
        build_index_from_shards(tmp_path / "empty")


def test_cli_subcommand(archive, tmp_path, capsys):
    from core.cli.archive import add_parser

    data, run = archive
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["embed-archive", "--run", str(run), "--data", str(data),
                              "--out", str(tmp_path / "out"), "--shard-size", "8",
                              "--workers", "0", "--precision", "fp32"])
    assert args.func(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["n_vectors"], summary["n_shards"], summary["index_kind"]) == (20, 3, "exact")


def _shard_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


def test_out_folder_records_its_archive_and_refuses_another(archive, tmp_path, capsys):
    """One OUT folder took a second archive (one index over two: n_files 53, n_vectors 113)."""
    import shutil

    from core.cli.main import main

    data, run = archive
    out = tmp_path / "out"
    _embed(run, data, out)
    assert json.loads((out / "archive.json").read_text())["archive_root"] == str(data.resolve())
    other = tmp_path / "other"
    shutil.copytree(data / "Normal", other / "Normal")
    before = _shard_files(out)
    with pytest.raises(ArchiveError, match="made from the archive"):
        _embed(run, other, out)
    capsys.readouterr()
    code = main(["embed-archive", "--run", str(run), "--data", str(other), "--out", str(out),
                 "--workers", "0", "--precision", "fp32"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and str(data.resolve()) in err, err
    assert _shard_files(out) == before
    assert _embed(run, data, out).new_shards == ()  # its own archive still resumes


def test_an_out_folder_without_a_recorded_archive_takes_only_its_own(archive, tmp_path):
    """Folders written before the archive root was recorded: the root is checked against the
    files their shards name, and recorded once it holds them."""
    import shutil

    data, run = archive
    out = tmp_path / "out"
    _embed(run, data, out)
    manifest = json.loads((out / "archive.json").read_text())
    del manifest["archive_root"]
    (out / "archive.json").write_text(json.dumps(manifest))
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(data / list_archive(data)[0], other / "unrelated.png")
    with pytest.raises(ArchiveError, match="another archive"):
        _embed(run, other, out)
    assert "archive_root" not in json.loads((out / "archive.json").read_text())
    assert _embed(run, data, out).new_shards == ()
    assert json.loads((out / "archive.json").read_text())["archive_root"] == str(data.resolve())


def test_a_folder_without_images_is_refused_before_anything_is_written(archive, tmp_path):
    data, run = archive
    empty = tmp_path / "etc"
    empty.mkdir()
    (empty / "passwd").write_text("root:x:0:0\n")
    with pytest.raises(ArchiveError, match="no images"):
        _embed(run, empty, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_shards_get_the_mode_a_plain_open_gives(archive, tmp_path):
    """Shards were 0600 (mkstemp): the app, as another user of the group, could not read them."""
    import os

    data, run = archive
    old = os.umask(0o002)
    try:
        _embed(run, data, tmp_path / "out")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "out").iterdir()}
    assert modes and set(modes.values()) == {0o664}, modes


def _stop_after(n: int):
    seen: list[ShardInfo] = []

    def stop(info: ShardInfo) -> None:
        seen.append(info)
        if len(seen) == n:
            raise Interrupt

    return stop


def _archive_with_a_gap(archive, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A copy of the archive embedded into shards 0 and 2 (1 lost); (images, run, out)."""
    import shutil

    data, run = archive
    copy, out = tmp_path / "images", tmp_path / "out"
    shutil.copytree(data, copy)
    with pytest.raises(Interrupt):
        _embed(run, copy, out, on_shard=_stop_after(3))
    _lose_shard(out, 1)
    return copy, run, out


def _lose_shard(out: Path, number: int) -> None:
    """A gap, as two Ray actors finishing out of order leave one: shard `number` not written."""
    for p in out.glob(f"shard-{number:05d}*"):
        p.unlink()


def test_a_resume_fills_a_gap_with_the_shard_an_uninterrupted_run_has(archive, tmp_path):
    """A Ray run killed with shards 0 and 2 done (1 not) resumed into shards 3 and 4: the same
    files and vectors as an uninterrupted run, in another order. Files added since still go
    into new shards at the end."""
    copy, run, out = _archive_with_a_gap(archive, tmp_path)
    import shutil

    assert [s.number for s in finished_shards(out)] == [0, 2]
    shutil.copy(copy / list_archive(copy)[0], copy / "zz_new.png")  # sorts after every file
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*")}

    resumed = _embed(run, copy, out)
    assert resumed.new_shards == (1, 3)
    assert all((out / name).stat().st_mtime_ns == t for name, t in kept.items())
    full = _embed(run, copy, tmp_path / "full")
    assert full.new_shards == (0, 1, 2, 3)
    for a, b in zip(finished_shards(tmp_path / "full"), finished_shards(out), strict=True):
        assert a.number == b.number and a.paths.read_text() == b.paths.read_text()
        np.testing.assert_array_equal(np.load(a.vectors), np.load(b.vectors))
    assert read_archive_paths(out)[-1] == "zz_new.png"


def test_a_gap_that_is_no_longer_one_chunk_goes_into_new_shards(archive, tmp_path):
    """A file added inside a gap's range: the gap cannot be refilled as it was, so its files
    and the new one go into new shards at the end; every file is embedded exactly once."""
    copy, run, out = _archive_with_a_gap(archive, tmp_path)
    import shutil

    inside = Path(list_archive(copy)[7])  # shard 1 held files 6..11
    shutil.copy(copy / inside, copy / inside.with_name(inside.stem + "_b.png"))
    resumed = _embed(run, copy, out)
    assert resumed.new_shards == (3, 4)
    assert sorted(read_archive_paths(out)) == list_archive(copy)
    assert _embed(run, copy, out).new_shards == ()
