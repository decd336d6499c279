"""Retrieval metrics: hand-computed cases, scikit-learn agreement, and the blocked evaluator."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from core.retrieval.metrics import (
    RetrievalScores,
    average_precision,
    evaluate_retrieval,
    map_at_r,
    precision_at_k,
    r_precision,
)


def test_precision_at_k_by_hand():
    rel = np.array([1, 0, 1, 0], dtype=bool)
    assert precision_at_k(rel, 1) == 1.0
    assert precision_at_k(rel, 2) == 0.5
    assert precision_at_k(rel, 4) == 0.5
    assert precision_at_k(rel, 10) == 0.2  # positions past the gallery count as misses


def test_precision_at_k_rejects_bad_k():
    with pytest.raises(ValueError, match="k must be"):
        precision_at_k(np.ones(3, dtype=bool), 0)


def test_average_precision_by_hand():
    assert average_precision(np.array([1, 0, 1, 0])) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(np.array([0, 0, 0, 1])) == pytest.approx(1 / 4)
    assert average_precision(np.ones(5)) == 1.0


def test_no_relevant_item_gives_zero():
    rel = np.zeros(6, dtype=bool)
    assert average_precision(rel) == 0.0
    assert map_at_r(rel) == 0.0
    assert r_precision(rel) == 0.0
    assert precision_at_k(rel, 5) == 0.0


def test_map_at_r_and_r_precision_by_hand():
    rel = np.array([1, 0, 1, 1, 0], dtype=bool)  # R = 3, top 3 = [1, 0, 1]
    assert map_at_r(rel) == pytest.approx((1 + 2 / 3) / 3)
    assert r_precision(rel) == pytest.approx(2 / 3)
    assert map_at_r(np.array([1, 1, 0, 0])) == 1.0
    assert map_at_r(np.array([0, 0, 1, 1])) == 0.0


def test_map_at_r_is_at_most_average_precision():
    rng = np.random.default_rng(0)
    for _ in range(50):
        rel = rng.random(30) < 0.3
        assert map_at_r(rel) <= average_precision(rel) + 1e-12


@pytest.mark.parametrize("seed", range(20))
def test_average_precision_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.random(40) < rng.uniform(0.05, 0.6)
    y_true[rng.integers(40)] = True
    scores = rng.permutation(40).astype(float)  # distinct scores: no ties
    ranked = y_true[np.argsort(-scores)]
    assert average_precision(ranked) == pytest.approx(average_precision_score(y_true, scores))


def _circle(degrees):
    rad = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    return np.stack([np.cos(rad), np.sin(rad)], axis=1).astype(np.float32)


# Five points on the unit circle; rankings worked out by angle difference in the tests.
ANGLES = [0, 15, 35, 90, 120]
LABELS = ["A", "A", "B", "B", "A"]


def test_evaluate_retrieval_by_hand():
    vecs = _circle(ANGLES)
    idx = np.arange(5)
    s = evaluate_retrieval(vecs, LABELS, idx, idx)
    # Ranked relevance with the query removed:
    # q0 A: 1 2 3 4 -> [1 0 0 1]   AP 3/4   MAP@R 1/2
    # q1 A: 0 2 3 4 -> [1 0 0 1]   AP 3/4   MAP@R 1/2
    # q2 B: 1 0 3 4 -> [0 0 1 0]   AP 1/3   MAP@R 0
    # q3 B: 4 2 1 0 -> [0 1 0 0]   AP 1/2   MAP@R 0
    # q4 A: 3 2 1 0 -> [0 0 1 1]   AP 5/12  MAP@R 0
    assert s.n_queries == 5 and s.n_gallery == 5 and s.n_skipped == 0
    assert s.precision_at_1 == pytest.approx(2 / 5)
    assert s.precision_at_5 == pytest.approx(8 / 25)
    assert s.precision_at_10 == pytest.approx(8 / 50)
    assert s.map == pytest.approx((3 / 4 + 3 / 4 + 1 / 3 + 1 / 2 + 5 / 12) / 5)
    assert s.map_at_r == pytest.approx(1 / 5)
    assert s.per_class["A"]["n_queries"] == 3
    assert s.per_class["A"]["precision_at_1"] == pytest.approx(2 / 3)
    assert s.per_class["A"]["map"] == pytest.approx((3 / 4 + 3 / 4 + 5 / 12) / 3)
    assert s.per_class["A"]["map_at_r"] == pytest.approx(1 / 3)
    assert s.per_class["B"]["n_queries"] == 2
    assert s.per_class["B"]["map"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert s.per_class["B"]["map_at_r"] == 0.0


def test_query_never_counts_itself():
    vecs = _circle(ANGLES)
    inside = evaluate_retrieval(vecs, LABELS, np.array([0]), np.arange(5))
    outside = evaluate_retrieval(vecs, LABELS, np.array([0]), np.arange(1, 5))
    assert inside.map == outside.map == pytest.approx(3 / 4)
    assert inside.precision_at_1 == outside.precision_at_1 == 1.0
    assert inside.n_gallery == 5 and outside.n_gallery == 4


def test_lone_queries_are_skipped():
    vecs = _circle(ANGLES + [200])
    labels = LABELS + ["C"]  # the only C, and only a query: nothing relevant in the gallery
    s = evaluate_retrieval(vecs, labels, np.arange(6), np.arange(5))
    assert s.n_queries == 5 and s.n_skipped == 1
    assert "C" not in s.per_class
    assert s.to_dict() == evaluate_retrieval(vecs, labels, np.arange(5), np.arange(5)).to_dict()


def test_ties_are_broken_by_gallery_position():
    vecs = _circle([0, 10, 10])
    labels = ["A", "B", "A"]
    q = np.array([0])
    assert evaluate_retrieval(vecs, labels, q, np.array([1, 2])).precision_at_1 == 0.0
    assert evaluate_retrieval(vecs, labels, q, np.array([2, 1])).precision_at_1 == 1.0


def test_blocked_evaluation_matches_per_query_functions_and_sklearn():
    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((60, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    labels = [str(c) for c in rng.integers(0, 3, 60)]
    query, gallery = np.arange(0, 20), np.arange(10, 60)
    small = evaluate_retrieval(vecs, labels, query, gallery, block=3)
    large = evaluate_retrieval(vecs, labels, query, gallery, block=1024)
    assert small == large

    lab = np.array(labels)
    aps, maprs, p5 = [], [], []
    for qi in query:
        g = gallery[gallery != qi]
        scores = vecs[g] @ vecs[qi]
        y = lab[g] == lab[qi]
        ranked = y[np.argsort(-scores, kind="stable")]
        aps.append(average_precision_score(y, scores))
        maprs.append(map_at_r(ranked))
        p5.append(precision_at_k(ranked, 5))
    assert small.map == pytest.approx(np.mean(aps))
    assert small.map_at_r == pytest.approx(np.mean(maprs))
    assert small.precision_at_5 == pytest.approx(np.mean(p5))


def test_to_dict_has_exactly_the_contract_keys():
    vecs = _circle(ANGLES)
    d = evaluate_retrieval(vecs, LABELS, np.arange(5), np.arange(5)).to_dict()
    assert set(d) == {
        "precision_at_1",
        "precision_at_5",
        "precision_at_10",
        "map",
        "map_at_r",
        "per_class",
        "n_queries",
        "n_gallery",
    }
    assert set(d["per_class"]["A"]) == {
        "precision_at_1",
        "precision_at_5",
        "precision_at_10",
        "map",
        "map_at_r",
        "n_queries",
    }
    assert isinstance(RetrievalScores(**{**d, "per_class": {}}), RetrievalScores)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query_idx": np.array([], dtype=int)}, "empty query set"),
        ({"gallery_idx": np.array([], dtype=int)}, "empty gallery"),
        ({"query_idx": np.array([7])}, "query indices"),
        ({"gallery_idx": np.array([1, 1])}, "duplicates"),
        ({"labels": ["A"]}, "labels for"),
        ({"vectors": _circle(ANGLES) * 2}, "L2-normalised"),
        ({"vectors": np.full((5, 2), np.nan, dtype=np.float32)}, "NaN"),
    ],
)
def test_bad_input_raises_clear_error(kwargs, message):
    args = {
        "vectors": _circle(ANGLES),
        "labels": LABELS,
        "query_idx": np.arange(5),
        "gallery_idx": np.arange(5),
    }
    with pytest.raises(ValueError, match=message):
        evaluate_retrieval(**{**args, **kwargs})


def test_all_queries_lone_raises():
    with pytest.raises(ValueError, match="no query has a relevant"):
        evaluate_retrieval(_circle([0, 50]), ["A", "B"], np.arange(2), np.arange(2))
