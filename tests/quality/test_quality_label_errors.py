"""Likely label errors: k-NN label shares by hand, and cleanlab's pick on a known mislabel."""

from __future__ import annotations

import numpy as np

from core.quality.label_errors import find_label_errors, knn_label_probabilities, why_no_label_list


def test_label_shares_of_neighbours_by_hand():
    neighbours = np.array([[1, 2], [0, 2], [0, 1]])
    probs = knn_label_probabilities(neighbours, np.array([0, 0, 1]), 2)
    # film 0's neighbours are films 1 (class 0) and 2 (class 1); film 2's are 0 and 1 (both 0)
    np.testing.assert_allclose(probs, [[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]])


def _clusters() -> tuple[list[str], list[str], np.ndarray]:
    """Six films near (1, 0) labelled a, six near (0, 1) labelled b, and 'odd', near (1, 0)
    but labelled b."""
    rng = np.random.default_rng(1)
    a = np.array([1.0, 0.0]) + rng.normal(0, 0.02, (6, 2))
    b = np.array([0.0, 1.0]) + rng.normal(0, 0.02, (6, 2))
    x = np.vstack([a, b, [[1.0, 0.01]]])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    paths = [f"a{i}" for i in range(6)] + [f"b{i}" for i in range(6)] + ["odd"]
    return paths, ["a"] * 6 + ["b"] * 7, x


def test_the_film_among_the_other_label_is_the_one_listed():
    paths, labels, x = _clusters()
    out = find_label_errors(paths, labels, x, k=5)
    assert [f.path for f in out.findings] == ["odd"]
    f = out.findings[0]
    assert (f.label, f.score, f.reason) == ("b", 0.0, "5 of 5 nearest are a; 0 b")


def test_unlabelled_films_neither_vote_nor_get_listed():
    paths, labels, x = _clusters()
    extra = np.array([[1.0, 0.0]] * 3)
    out = find_label_errors([*paths, "u0", "u1", "u2"], [*labels, "", "", ""], np.vstack([x, extra]), k=5)
    assert [f.path for f in out.findings] == ["odd"]
    assert out.findings[0].reason == "5 of 5 nearest are a; 0 b"  # the u's did not vote


def test_no_list_without_two_labels_and_the_reason_says_so():
    x = np.eye(3, dtype=np.float32)
    none = find_label_errors(["a", "b", "c"], ["", "", ""], x)
    assert none.skipped == "The run has no labels, so there is no label to disagree with."
    assert not none.findings
    assert "one label only" in find_label_errors(["a", "b", "c"], ["x", "x", ""], x).skipped
    assert why_no_label_list(["x", "y"]) == ""


def test_cleanlab_works_in_this_process_and_starts_no_pool(monkeypatch):
    """cleanlab forks a multiprocessing pool by default; forked from the app's server (threads,
    torch loaded) it hung, and the page's spinner never ended. The list is made in-process."""
    import multiprocessing

    def no_pool(*a, **k):
        raise AssertionError("cleanlab started a process pool")

    monkeypatch.setattr(multiprocessing, "Pool", no_pool)
    paths, labels, x = _clusters()
    assert [f.path for f in find_label_errors(paths, labels, x, k=5).findings] == ["odd"]
