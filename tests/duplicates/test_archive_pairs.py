"""Archive-scale mining: candidates through any index kind, in blocks, equal the exact miner's."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from core.duplicates.archive_pairs import archive_duplicates, candidate_pairs
from core.duplicates.neighbours import mine_pair_arrays
from core.index.vectors import VectorIndex


def _planted(n: int = 1500, dim: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x[n // 2:n // 2 + 30] = x[:30] + 0.02 * rng.standard_normal((30, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivfpq"])
def test_candidates_in_blocks_match_the_exact_miner(kind):
    x = _planted()
    shards = [x[:400], x[400:1100], x[1100:]]
    index = VectorIndex.build(x, kind)
    pairs, scores = candidate_pairs(shards, index, k=5, floor=0.9, block=256)
    want = mine_pair_arrays(x, 0.9, k=5)
    assert {tuple(p) for p in pairs.tolist()} == set(zip(want.i.tolist(), want.j.tolist(),
                                                         strict=True))
    np.testing.assert_allclose(scores, np.einsum("pd,pd->p", x[pairs[:, 0]], x[pairs[:, 1]]),
                               atol=1e-6)
    assert np.all(np.diff(scores) <= 0)
    with pytest.raises(ValueError, match="rows"):
        candidate_pairs(shards[:2], index)


def test_archive_duplicates_finds_a_byte_copy_and_verifies_a_transformed_one(tmp_path):
    import torch
    from PIL import Image

    from core.config import make_run_config
    from core.demo.dataset import write_demo_dataset
    from core.embed.shards import embed_archive
    from core.index.from_shards import build_index_from_shards
    from core.model.checkpoint import save_checkpoint
    from core.model.network import build_model
    from core.run_folder import RunPaths

    data = write_demo_dataset(tmp_path / "images", per_class=4, size=128, seed=0,
                              duplicate_fraction=0.0).root
    films = sorted(data.rglob("*.png"))
    shutil.copy(films[0], data / "byte-copy.png")
    Image.open(films[1]).rotate(4).crop((6, 6, 122, 122)).save(data / "rotated-copy.png")
    config = make_run_config(str(data), "tiny")
    torch.manual_seed(0)
    save_checkpoint(RunPaths(tmp_path / "run").best, build_model(config.model), config, epoch=0)
    embed_archive(tmp_path / "run", data, tmp_path / "out", precision="fp32", workers=0)
    build_index_from_shards(tmp_path / "out", "exact")
    pairs = archive_duplicates(tmp_path / "out", data, threshold=0.999, floor=0.0, k=5)
    by_kind = {(p.a, p.b): p.kind for p in pairs}
    first = films[0].relative_to(data).as_posix()
    assert by_kind[tuple(sorted((first, "byte-copy.png")))] == "exact"
    second = films[1].relative_to(data).as_posix()
    rotated = tuple(sorted((second, "rotated-copy.png")))
    assert by_kind.get(rotated) == "copy", pairs
    # issue 31: above a floor no embedding pair reaches, the copy candidates still find it
    strict = {(p.a, p.b): p.kind for p in archive_duplicates(tmp_path / "out", data, threshold=1.0,
                                                              floor=1.0, k=5)}
    assert strict.get(rotated) == "copy"
    off = {(p.a, p.b) for p in archive_duplicates(tmp_path / "out", data, threshold=1.0, floor=1.0,
                                                  k=5, copy_k=0)}
    assert rotated not in off


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> tuple:
    """A small archive, embedded and indexed with an untrained tiny model: (data, run, out)."""
    import torch

    from core.config import make_run_config
    from core.demo.dataset import write_demo_dataset
    from core.embed.shards import embed_archive
    from core.index.from_shards import build_index_from_shards
    from core.model.checkpoint import save_checkpoint
    from core.model.network import build_model
    from core.run_folder import RunPaths

    base = tmp_path_factory.mktemp("embedded")
    data = write_demo_dataset(base / "images", per_class=3, size=48, seed=0,
                              duplicate_fraction=0.0).root
    shutil.copy(sorted(data.rglob("*.png"))[0], data / "byte-copy.png")
    config = make_run_config(str(data), "tiny")
    torch.manual_seed(0)
    save_checkpoint(RunPaths(base / "run").best, build_model(config.model), config, epoch=0)
    embed_archive(base / "run", data, base / "out", precision="fp32", workers=0)
    build_index_from_shards(base / "out", "exact")
    return data, base / "run", base / "out"


def _archive_duplicates_cli(out, data, capsys) -> tuple[int, str]:
    from core.cli.main import main

    capsys.readouterr()
    code = main(["archive-duplicates", "--out", str(out), "--data", str(data)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("which", ["missing", "no_images", "other_archive"])
def test_archive_duplicates_refuses_a_folder_other_than_its_archive(which, embedded, tmp_path,
                                                                     capsys):
    """A missing folder (or /etc) exited 0, said 'exact 0' and overwrote duplicates.csv."""
    data, _, out = embedded
    if which == "missing":
        given = tmp_path / "no-such-archive"
    elif which == "no_images":
        given = tmp_path / "etc"
        given.mkdir()
        (given / "hosts").write_text("127.0.0.1 localhost\n")
    else:
        given = tmp_path / "other"
        shutil.copytree(data, given)  # the same files, but not the folder OUT was made from
    (out / "duplicates.csv").write_text("earlier pairs\n")
    code, err = _archive_duplicates_cli(out, given, capsys)
    assert code == 2 and len(err.splitlines()) == 1 and str(given.name) in err, err
    assert (out / "duplicates.csv").read_text() == "earlier pairs\n"
    assert _archive_duplicates_cli(out, data, capsys)[0] == 0  # its own archive still works
    assert "byte-copy.png" in (out / "duplicates.csv").read_text()


def test_archive_duplicates_checks_an_out_folder_that_records_no_archive(embedded, tmp_path,
                                                                         capsys):
    """An OUT folder written before its archive was recorded: the shards' files must be there."""
    import json

    from core.embed.shard_format import ArchiveError

    data, _, out = embedded
    legacy = tmp_path / "legacy"
    shutil.copytree(out, legacy)
    manifest = json.loads((legacy / "archive.json").read_text())
    del manifest["archive_root"]
    (legacy / "archive.json").write_text(json.dumps(manifest))
    unrelated = tmp_path / "unrelated"
    unrelated.mkdir()
    shutil.copy(data / "byte-copy.png", unrelated / "x.png")
    with pytest.raises(ArchiveError, match="another archive"):
        archive_duplicates(legacy, unrelated)
    assert any(p.kind == "exact" for p in archive_duplicates(legacy, data))
