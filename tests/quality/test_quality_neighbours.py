"""Exact k nearest neighbours, checked against hand-worked cosines and against scikit-learn."""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from core.quality.neighbours import nearest_neighbours
from core.quality.outliers import find_outliers, knn_distance, upper_fence


def _unit(degrees: list[float]) -> np.ndarray:
    r = np.radians(degrees)
    return np.stack([np.cos(r), np.sin(r)], axis=1).astype(np.float32)


def test_neighbours_of_points_on_a_circle_by_hand():
    # 0, 10, 90 and 180 degrees: cos 10 = 0.985, cos 80 = 0.174, cos 90 = 0, cos 170 = -0.985
    idx, sims = nearest_neighbours(_unit([0, 10, 90, 180]), k=2)
    assert idx.tolist() == [[1, 2], [0, 2], [1, 0], [2, 1]]
    np.testing.assert_allclose(sims[0], [np.cos(np.radians(10)), 0.0], atol=1e-6)
    np.testing.assert_allclose(sims[3], [0.0, np.cos(np.radians(170))], atol=1e-6)


def test_a_film_is_never_its_own_neighbour_and_k_is_capped():
    idx, sims = nearest_neighbours(_unit([0, 0, 0]), k=10)  # three identical films
    assert idx.shape == (3, 2)
    assert all(i not in row for i, row in enumerate(idx.tolist()))
    assert nearest_neighbours(_unit([0]), k=5)[0].shape == (1, 0)


def test_blocks_do_not_change_the_answer_and_sklearn_agrees():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    idx, sims = nearest_neighbours(x, k=4)
    idx7, sims7 = nearest_neighbours(x, k=4, block=7)
    assert (idx == idx7).all() and np.allclose(sims, sims7)
    ref = NearestNeighbors(n_neighbors=5, metric="cosine").fit(x).kneighbors(x, return_distance=False)
    assert (idx == ref[:, 1:]).all()  # sklearn's first neighbour is the film itself


def test_knn_distance_and_tukey_fence_by_hand():
    np.testing.assert_allclose(knn_distance(np.array([[1.0, 0.8], [0.5, 0.5]])), [0.1, 0.5])
    # quartiles of 1, 2, 3, 4, 100 are 2 and 4: fence 4 + 1.5 * 2 = 7
    assert upper_fence(np.array([1, 2, 3, 4, 100])) == 7.0


def test_only_films_past_the_fence_are_outliers_most_isolated_first():
    # distances 0.01 .. 0.04, 0.9 and 1.0: quartiles 0.0225 and 0.685, fence 1.679: none;
    # distances 0.01, 0.02, 0.03, 0.04, 1.0: quartiles 0.02, 0.04, fence 0.07: the last one
    sims = 1 - np.array([[0.01], [0.02], [0.03], [0.04], [1.0]])
    out = find_outliers([f"f{i}" for i in range(5)], ["x"] * 5, sims)
    assert [f.path for f in out.findings] == ["f4"]
    assert out.findings[0].score == 1.0
    assert out.findings[0].reason == "mean cosine distance 1.000 to its 1 nearest (run median 0.030, fence 0.070)"
    two = 1 - np.array([[0.01], [0.02], [0.03], [0.04], [0.9], [1.0]])
    assert len(find_outliers([f"f{i}" for i in range(6)], ["x"] * 6, two)) == 0
    assert find_outliers(["a", "b"], ["x", "x"], np.ones((2, 1))).skipped
