"""2-D maps: PCA by hand, t-SNE properties, the run-folder cache and the background process."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from core.cli.main import main as cli_main
from core.embed.embeddings import Embeddings, l2_normalize
from core.embed.projection import (
    ProjectionError,
    ProjectionSpec,
    cached_projection,
    load_projection,
    pca_2d,
    projection_path,
    tsne_2d,
)
from core.jobs.projection import progress_path, projection_status, start_projection, write_progress
from core.run_folder import RunError


def _clusters(n_per: int = 20, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two tight, far-apart clusters: (2 n_per, dim) vectors and their (2 n_per,) cluster ids."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((2, dim))
    centres[0, 0], centres[1, 1] = 10.0, 10.0
    ids = np.repeat([0, 1], n_per)
    return centres[ids] + 0.1 * rng.normal(size=(ids.size, dim)), ids


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A run folder holding only embeddings (enough for projections): 30 images, 3 splits."""
    vectors, ids = _clusters(15)
    splits = ["train"] * 20 + ["val"] * 4 + ["test"] * 6
    Embeddings([f"c{i}/img{j}.png" for j, i in enumerate(ids)], [f"c{i}" for i in ids], splits,
               [""] * 30, l2_normalize(vectors)).save(tmp_path)
    return tmp_path


def test_pca_of_points_on_a_line_by_hand():
    x = np.array([[0.0, 5.0], [1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    xy = pca_2d(x)
    assert xy.shape == (4, 2) and xy.dtype == np.float32
    np.testing.assert_allclose(xy[:, 0], [-1.5, -0.5, 0.5, 1.5], atol=1e-6)  # centred, sign fixed
    np.testing.assert_allclose(xy[:, 1], 0.0, atol=1e-6)


def test_pca_matches_scikit_learn_up_to_sign():
    from sklearn.decomposition import PCA

    x = np.random.default_rng(1).normal(size=(50, 8))
    ours = pca_2d(x)
    ref = PCA(2).fit_transform(x)
    for c in range(2):
        np.testing.assert_allclose(np.abs(ours[:, c]), np.abs(ref[:, c]), atol=1e-4)
        assert abs(np.corrcoef(ours[:, c], ref[:, c])[0, 1]) > 0.9999


@pytest.mark.parametrize("shape", [(0, 5), (1, 5), (6, 1)])
def test_pca_edge_cases_keep_the_shape(shape):
    xy = pca_2d(np.ones(shape))
    assert xy.shape == (shape[0], 2)
    assert np.isfinite(xy).all()


def test_tsne_separates_clusters_is_reproducible_and_reports_progress():
    x, ids = _clusters(20)
    seen: list[float] = []
    xy = tsne_2d(x, perplexity=10, seed=3, progress_callback=lambda f, m: seen.append(f))
    assert xy.shape == (40, 2) and np.isfinite(xy).all()
    # every point's nearest neighbour on the map is in its own cluster
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(40) * 1e9
    assert (ids[d.argmin(axis=1)] == ids).all()
    assert seen[-1] == 1.0 and seen == sorted(seen) and len(seen) > 5
    np.testing.assert_allclose(tsne_2d(x, perplexity=10, seed=3), xy, atol=1e-5)


def test_tsne_with_few_points_lowers_perplexity_or_falls_back_to_pca():
    x, _ = _clusters(4)  # 8 points with perplexity 30
    assert tsne_2d(x, perplexity=30).shape == (8, 2)
    np.testing.assert_array_equal(tsne_2d(x[:3]), pca_2d(x[:3]))


def test_spec_names_and_validation():
    assert ProjectionSpec("tsne", 30.0, 0, "all").name == "projection-tsne-p30-s0-all"
    assert ProjectionSpec("tsne", 7.5, 2, "test").name == "projection-tsne-p7.5-s2-test"
    assert ProjectionSpec("pca", 99, 9, "val").name == "projection-pca-val"
    for bad in ({"method": "umap"}, {"split": "holdout"}, {"perplexity": 0.0},
                {"perplexity": float("nan")}):
        with pytest.raises(ProjectionError):
            ProjectionSpec(**bad)


def test_cached_projection_is_saved_reused_and_invalidated(run: Path, monkeypatch):
    first = cached_projection(run, "tsne", perplexity=5, seed=0, split="test")
    path = projection_path(run, first.spec)
    assert path.is_file() and first.xy.shape == (6, 2)
    np.testing.assert_array_equal(first.rows, np.arange(24, 30))

    import core.embed.projection as projection

    def fail(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(projection, "tsne_2d", fail)
    again = cached_projection(run, "tsne", perplexity=5, seed=0, split="test")
    np.testing.assert_array_equal(again.xy, first.xy)
    # re-embedding the run (a newer embeddings.npy) makes the saved map stale
    emb_file = run / "embeddings.npy"
    later = path.stat().st_mtime_ns + 10**9
    os.utime(emb_file, ns=(later, later))
    assert load_projection(run, first.spec) is None
    with pytest.raises(AssertionError, match="recomputed"):
        cached_projection(run, "tsne", perplexity=5, seed=0, split="test")


def test_wrong_length_file_is_ignored(run: Path):
    spec = ProjectionSpec("pca", split="all")
    np.save(projection_path(run, spec), np.zeros((3, 2), np.float32))
    assert load_projection(run, spec) is None
    assert cached_projection(run, "pca").xy.shape == (30, 2)


def test_empty_split_and_missing_run_are_one_line_errors(run: Path, tmp_path: Path):
    Embeddings(["a.png", "b.png"], ["x", "y"], ["train", "train"], ["", ""],
               np.eye(2, dtype=np.float32)).save(tmp_path / "r2")
    with pytest.raises(ProjectionError, match="no images in split 'test'"):
        cached_projection(tmp_path / "r2", "pca", split="test")
    with pytest.raises(RunError, match="no embeddings"):
        cached_projection(tmp_path / "nothing", "pca")


def test_status_reads_progress_and_notices_a_dead_process(run: Path):
    import os

    from core.files import try_lock
    from core.jobs.projection import _lock_path

    spec = ProjectionSpec("tsne", 5.0, 0, "all")
    assert projection_status(run, spec).state == "missing"
    fd = try_lock(_lock_path(run, spec))  # a live computing process holds the job's lock
    assert fd is not None
    try:
        write_progress(run, spec, "running", 0.4, "optimising the map")
        status = projection_status(run, spec)
        assert (status.state, status.fraction, status.message) == ("running", 0.4, "optimising the map")
    finally:
        os.close(fd)
    assert projection_status(run, spec).state == "failed"  # says running, but nobody holds the lock
    write_progress(run, spec, "failed", 0.0, "out of memory")
    status = projection_status(run, spec)
    assert (status.state, status.fraction, status.message) == ("failed", 0.0, "out of memory")

def test_cli_project_writes_the_map_and_its_progress(run: Path, capsys):
    assert cli_main(["project", "--run", str(run), "--method", "pca", "--split", "train"]) == 0
    spec = ProjectionSpec("pca", split="train")
    assert load_projection(run, spec).xy.shape == (20, 2)
    assert projection_status(run, spec).state == "done"
    assert "20 points" in capsys.readouterr().out
    assert cli_main(["project", "--run", str(run / "missing")]) == 2
    assert "no embeddings" in capsys.readouterr().err


def test_background_process_computes_once(run: Path):
    spec = ProjectionSpec("tsne", 5.0, 1, "val")
    status = start_projection(run, spec)
    assert status.state == "running"
    assert start_projection(run, spec).state == "running"  # a second click starts nothing new
    deadline = time.monotonic() + 180
    while projection_status(run, spec).state == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert projection_status(run, spec).state == "done", progress_path(run, spec).read_text()
    assert load_projection(run, spec).xy.shape == (4, 2)
    assert start_projection(run, spec).state == "done"
