"""Best-match scores read against the dataset's own nearest neighbours, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from core.retrieval.familiarity import (
    PROFILE_FILE,
    ScoreProfile,
    best_match_scores,
    familiarity_of,
    profile_from_vectors,
    score_profile,
)


def _unit(rows):
    v = np.array(rows, np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_best_match_leaves_each_image_itself_out():
    v = _unit([[1, 0], [1, 0], [0, 1]])  # two identical, one orthogonal
    np.testing.assert_allclose(best_match_scores(v), [1.0, 1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(best_match_scores(v, np.array([2])), [0.0], atol=1e-6)
    assert best_match_scores(v[:1]).tolist() == [-1.0]


def test_percentile_and_unlike_by_hand():
    p = ScoreProfile(tuple(np.linspace(0.90, 1.00, 101)), 101)  # 1st percentile at 0.901
    assert p.percentile(0.95) == pytest.approx(50.0)
    assert p.percentile(0.5) == 0.0 and p.percentile(1.5) == 100.0
    assert p.unlike_below == pytest.approx(0.901)
    assert familiarity_of(p, 0.8).unlike and not familiarity_of(p, 0.93).unlike
    assert familiarity_of(p, 0.93).percentile == pytest.approx(30.0)


def test_profile_is_kept_per_embeddings_file(tmp_path):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 8)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    np.save(tmp_path / "embeddings.npy", v)
    first = score_profile(tmp_path)
    assert (tmp_path / PROFILE_FILE).is_file() and first.n_images == 50
    assert first == profile_from_vectors(v)
    assert first.quantiles[-1] == pytest.approx(float(best_match_scores(v).max()), abs=1e-6)
    (tmp_path / PROFILE_FILE).write_text((tmp_path / PROFILE_FILE).read_text().replace(
        '"n_images": 50', '"n_images": 7'))
    assert score_profile(tmp_path).n_images == 7  # read back, not recomputed
    np.save(tmp_path / "embeddings.npy", v[:20])  # new embeddings: recomputed
    assert score_profile(tmp_path).n_images == 20
