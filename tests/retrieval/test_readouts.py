"""benchmarks.readouts: its first line is the run's own evaluation; whitening is fitted on train."""

import json

import numpy as np
import pytest

from benchmarks.readouts import GeM, Readouts, readouts


def test_the_runs_own_readout_scores_what_evaluate_saved(tiny_workspace):
    r = Readouts(tiny_workspace.run_dir)
    saved = json.loads((tiny_workspace.run_dir / "evaluation.json").read_text())
    made = readouts(r)
    vectors = made["the run's embedding"]()
    assert np.allclose(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), r.emb.vectors, atol=1e-4)
    p5, map_, map_r, _ = r.score(vectors)["test"]
    assert (p5, map_, map_r) == pytest.approx((saved["precision_at_5"], saved["map"], saved["map_at_r"]), abs=1e-6)


def test_whitening_gives_the_training_films_unit_variance(tiny_workspace):
    r = Readouts(tiny_workspace.run_dir)
    w = r.whiten(r.emb.vectors, dim=4, shrink=0.0)
    assert w.shape == (len(r.emb), 4)
    assert np.cov(w[r.split == "train"].T) == pytest.approx(np.eye(4), abs=1e-3)


def test_gem_with_p_1_is_average_pooling():
    import torch

    x = torch.rand(2, 3, 4, 4)
    assert torch.allclose(GeM(1.0)(x), x.mean((-2, -1)), atol=1e-6)
