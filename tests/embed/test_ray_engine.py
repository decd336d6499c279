"""The Ray engine of embed-archive on a local Ray: same vectors as in-process, resumes after a kill.

One local Ray for the whole module (2 CPUs, no dashboard); the killed run is a real
`python -m core embed-archive --engine ray` process joined to that Ray with --address.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.config import make_run_config
from core.embed.shard_format import ArchiveError, finished_shards, read_archive_paths
from core.embed.shards import embed_archive
from core.model.checkpoint import save_checkpoint
from core.model.network import build_model
from core.run_folder import RunPaths

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning",
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    import torch

    from core.demo.dataset import write_demo_dataset

    root = tmp_path_factory.mktemp("ray-archive")
    data = write_demo_dataset(root / "images", per_class=10, size=48, seed=0,
                              duplicate_fraction=0.0).root
    (data / "broken.png").write_bytes(b"not a png")  # an unreadable file: skipped by both
    config = make_run_config(str(data), "tiny")
    torch.manual_seed(0)
    save_checkpoint(RunPaths(root / "run").best, build_model(config.model), config, epoch=0)
    return data, root / "run"


def _vectors(out: Path) -> np.ndarray:
    return np.concatenate([np.load(s.vectors) for s in finished_shards(out)])


def test_ray_and_local_engines_give_the_same_shards_and_vectors(cluster, archive, tmp_path):
    data, run = archive
    kw = dict(shard_size=7, precision="fp32", device="cpu", batch_size=8)
    local = embed_archive(run, data, tmp_path / "local", workers=0, **kw)
    on_ray = embed_archive(run, data, tmp_path / "ray", engine="ray", **kw)
    assert on_ray.new_shards == local.new_shards and on_ray.n_skipped == local.n_skipped == 1
    assert read_archive_paths(tmp_path / "ray") == read_archive_paths(tmp_path / "local")
    diff = np.abs(_vectors(tmp_path / "ray") - _vectors(tmp_path / "local")).max()
    assert diff <= 1e-3
    skipped = sorted(p.name for p in (tmp_path / "ray").glob("*.skipped.csv"))
    assert skipped == sorted(p.name for p in (tmp_path / "local").glob("*.skipped.csv"))


def test_a_killed_ray_embedding_resumes_without_redoing_finished_shards(cluster, archive,
                                                                           tmp_path):
    data, run = archive
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "core", "embed-archive", "--run", str(run), "--data", str(data),
           "--out", str(out), "--shard-size", "2", "--batch-size", "2", "--precision", "fp32",
           "--device", "cpu", "--engine", "ray", "--address", cluster, "--no-index"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=os.environ | {"PYTHONPATH": str(ROOT)})
    deadline = time.time() + 240
    while not list(out.glob("shard-*.npy")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    stderr = proc.communicate()[1].decode(errors="replace")
    done = finished_shards(out)
    assert done, f"no shard written before the kill: {stderr[-2000:]}"
    assert len(done) < 21, "the run finished before it could be killed"
    # The files of finished shards (an unfinished one may have its csv written already: the
    # .npy, written last, is what marks a shard finished).
    stems = {s.vectors.name.split(".")[0] for s in done}
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("shard-*")
              if p.name.split(".")[0] in stems}

    resumed = embed_archive(run, data, out, shard_size=2, precision="fp32", device="cpu",
                            batch_size=2, engine="ray")
    finished = {s.number for s in done}
    assert not finished & set(resumed.new_shards)
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("shard-*")
            if p.name in before} == before
    assert resumed.n_vectors == 40 and resumed.n_skipped == 1
    whole = embed_archive(run, data, tmp_path / "whole", shard_size=2, precision="fp32",
                          device="cpu", workers=0)
    assert read_archive_paths(out) == read_archive_paths(tmp_path / "whole")
    assert np.abs(_vectors(out) - _vectors(tmp_path / "whole")).max() <= 1e-3
    assert whole.n_shards == resumed.n_shards


def test_bad_engine_settings_are_one_line_errors(cluster, archive, tmp_path):
    data, run = archive
    with pytest.raises(ArchiveError, match="engine"):
        embed_archive(run, data, tmp_path / "x", engine="spark")
    with pytest.raises(ArchiveError, match="needs --engine ray"):
        embed_archive(run, data, tmp_path / "z", address="auto")
    with pytest.raises(ArchiveError, match="GPUs"):
        embed_archive(run, data, tmp_path / "y", engine="ray", gpus_per_worker=1)


def test_archive_duplicates_verified_on_ray_equal_the_local_verification(cluster, archive,
                                                                         tmp_path):
    from core.duplicates.archive_pairs import archive_duplicates
    from core.index.from_shards import build_index_from_shards

    data, run = archive
    films = sorted(data.rglob("*.png"))
    copy = tmp_path / "images"
    shutil.copytree(data, copy)
    shutil.copy(films[0], copy / "byte-copy.png")
    out = tmp_path / "out"
    embed_archive(run, copy, out, precision="fp32", device="cpu", workers=0)
    build_index_from_shards(out, "exact")
    local = archive_duplicates(out, copy, floor=0.0, k=3)
    on_ray = archive_duplicates(out, copy, floor=0.0, k=3, engine="ray")
    assert on_ray == local
    assert any(p.kind == "exact" and "byte-copy.png" in (p.a, p.b) for p in on_ray)
    assert any(p.inliers is not None for p in on_ray)
