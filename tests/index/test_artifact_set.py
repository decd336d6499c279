"""A run's served files are one versioned set (issue 10 case 2): written beside the old one,
switched in one rename, refused when its parts disagree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.embed.embeddings import Embeddings
from core.index.artifacts import generations, open_artifact_set, write_artifact_set
from core.index.vectors import VectorIndex
from core.run_folder import RunError, RunPaths


def _embeddings(n: int, seed: int = 0, dim: int = 8) -> Embeddings:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return Embeddings([f"c/{i}.png" for i in range(n)], ["c"] * n, ["test"] * n, [""] * n, v)


@pytest.fixture
def run(tmp_path) -> Path:
    root = tmp_path / "run"
    root.mkdir()
    (root / "best.pt").write_bytes(b"weights-1")
    return root


def _write(run: Path, n: int, seed: int = 0) -> str:
    emb = _embeddings(n, seed)
    return write_artifact_set(run, emb, VectorIndex.build(emb.vectors), run / "best.pt")


def test_a_new_generation_switches_in_and_the_one_before_stays(run):
    assert _write(run, 5) == "g000001"
    served = open_artifact_set(run)
    assert (served.generation, served.index.ntotal, len(served.embeddings)) == ("g000001", 5, 5)
    (run / "best.pt").unlink()  # training replaces best.pt by rename: the set keeps its own
    (run / "best.pt").write_bytes(b"weights-2")
    assert _write(run, 7, seed=1) == "g000002"
    served = open_artifact_set(run)
    assert served.generation == "g000002" and served.checkpoint.read_bytes() == b"weights-2"
    assert _write(run, 6, seed=2) == "g000003"
    assert generations(run) == ["g000002", "g000003"]  # the one before is kept for open readers
    assert RunPaths(run, generation="g000002").model.read_bytes() == b"weights-2"


def test_a_kill_before_the_switch_leaves_the_old_set_served_and_whole(run, monkeypatch):
    _write(run, 5)
    import core.index.artifacts as artifacts

    def killed(path, obj):
        if path.name == "current.json":
            raise KeyboardInterrupt  # killed just before the switch
        return real(path, obj)

    real = artifacts.atomic_write_json
    monkeypatch.setattr(artifacts, "atomic_write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        _write(run, 9, seed=1)
    monkeypatch.setattr(artifacts, "atomic_write_json", real)
    served = open_artifact_set(run)
    assert (served.generation, served.index.ntotal) == ("g000001", 5)
    assert _write(run, 4, seed=2) == "g000003"
    assert generations(run) == ["g000001", "g000003"]  # the unfinished g000002 is gone


def test_parts_that_disagree_are_refused_in_one_line(run):
    _write(run, 5)
    paths = RunPaths(run)
    items = paths.items.read_text().splitlines()
    paths.items.write_text("\n".join(items[:-1]) + "\n")  # 4 items for 5 vectors
    with pytest.raises(RunError, match="re-embed") as err:
        open_artifact_set(run)
    assert "\n" not in str(err.value)


def test_a_replaced_checkpoint_or_index_of_another_set_is_refused(run):
    _write(run, 5)
    _write(run, 5, seed=1)
    now, before = RunPaths(run), RunPaths(run, generation="g000001")
    now.index.write_bytes(before.index.read_bytes())
    Path(f"{now.index}.json").write_text(Path(f"{before.index}.json").read_text())
    with pytest.raises(RunError, match="incomplete or mixed"):
        open_artifact_set(run)
    _write(run, 5, seed=2)
    RunPaths(run).model.unlink()
    RunPaths(run).model.write_bytes(b"other weights")
    with pytest.raises(RunError, match="checkpoint .* was changed"):
        open_artifact_set(run)


def test_malformed_embeddings_are_one_line(run):
    _write(run, 5)
    RunPaths(run).embeddings.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(RunError, match="re-embed"):
        open_artifact_set(run)


def test_a_run_folder_from_before_generations_still_loads_or_is_refused(run):
    emb = _embeddings(6)
    emb.save(run)  # the old layout: files at the top level
    VectorIndex.build(emb.vectors).save(run / "index.faiss")
    served = open_artifact_set(run)
    assert (served.generation, served.index.ntotal, served.checkpoint.name) == ("", 6, "best.pt")
    VectorIndex.build(emb.vectors[:4]).save(run / "index.faiss")  # 'embed' killed half-way
    with pytest.raises(RunError, match="index holds 4 vectors .* re-embed"):
        open_artifact_set(run)
    _write(run, 6)  # re-embedding moves it to a generation and clears the old files
    assert not (run / "embeddings.npy").exists() and open_artifact_set(run).generation == "g000001"
    assert json.loads((run / "artifacts" / "current.json").read_text()) == {"generation": "g000001"}


def test_a_stray_file_or_folder_named_like_a_generation_is_stepped_over(run):
    _write(run, 5)
    (run / "artifacts" / "g000002").write_text("left by hand")  # mkdir raised FileExistsError
    (run / "artifacts" / "gXYZ").mkdir()
    assert _write(run, 6, seed=1) == "g000003"
    assert open_artifact_set(run).index.ntotal == 6


def test_a_current_set_without_its_files_says_to_re_embed(run):
    _write(run, 5)
    (run / "artifacts" / "g000007").mkdir()
    (run / "artifacts" / "current.json").write_text(json.dumps({"generation": "g000007"}))
    with pytest.raises(RunError, match="g000007 is incomplete; re-embed"):  # said 'no index yet'
        open_artifact_set(run)
