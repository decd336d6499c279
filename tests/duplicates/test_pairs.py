"""Near-duplicate pair mining and grouping: known neighbours, brute-force agreement, groups."""

import numpy as np
import pytest

from core.duplicates.neighbours import (
    DuplicatePair,
    PairArrays,
    connected_groups,
    mine_pair_arrays,
    mine_pairs,
)
from core.index.vectors import VectorIndex


def circle(degrees) -> np.ndarray:
    rad = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    return np.stack([np.cos(rad), np.sin(rad)], axis=1).astype(np.float32)


def brute_force(x: np.ndarray, threshold: float, k: int) -> dict[tuple[int, int], float]:
    """Reference: full similarity matrix, each row's k best by (score desc, id asc)."""
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    out = {}
    for i in range(len(x)):
        for j in np.lexsort((np.arange(len(x)), -sims[i]))[:k]:
            if sims[i, j] >= np.float32(threshold):
                out[(min(i, j), max(i, j))] = float(sims[i, j])
    return out


def as_dict(pairs: PairArrays) -> dict[tuple[int, int], float]:
    return dict(
        zip(zip(pairs.i.tolist(), pairs.j.tolist(), strict=True), pairs.score.tolist(), strict=True)
    )


def test_known_neighbours_on_a_circle():
    x = circle([0, 1, 3, 90, 180, 180.5])
    pairs = mine_pairs(x, threshold=float(np.cos(np.deg2rad(5))), k=10)
    assert [(p.i, p.j) for p in pairs] == [(4, 5), (0, 1), (1, 2), (0, 2)]
    assert pairs[0].score == pytest.approx(np.cos(np.deg2rad(0.5)), abs=1e-6)
    assert all(isinstance(p, DuplicatePair) and p.i < p.j for p in pairs)


def test_threshold_and_k_limit_the_pairs():
    x = circle([0, 1, 3, 90, 180, 180.5])
    assert len(mine_pairs(x, threshold=float(np.cos(np.deg2rad(1.5))))) == 2
    assert mine_pairs(x, threshold=1.0) == []
    # k = 1: 0->1, 1->0, 2->1, 3->2 (87 degrees), 4->5, 5->4; threshold -1 keeps them all.
    nearest = {(p.i, p.j) for p in mine_pairs(x, threshold=-1.0, k=1)}
    assert nearest == {(0, 1), (1, 2), (4, 5), (2, 3)}


def test_pairs_are_deduplicated_and_sorted():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    pairs = mine_pair_arrays(x, threshold=0.0, k=5, block=64)
    keys = list(zip(pairs.i.tolist(), pairs.j.tolist(), strict=True))
    assert len(keys) == len(set(keys))
    assert (pairs.i < pairs.j).all()
    order = np.lexsort((pairs.j, pairs.i, -pairs.score))
    np.testing.assert_array_equal(order, np.arange(len(pairs)))


@pytest.mark.parametrize("seed", range(12))
def test_tiled_mining_equals_brute_force_with_many_ties(seed):
    # Entries of +-1/4 in 16 dims: unit rows whose dot products are exact in float32, so
    # ties are real and every tiling must break them the same way (by id).
    rng = np.random.default_rng(seed)
    n, k, block = int(rng.integers(2, 150)), int(rng.integers(1, 12)), int(rng.integers(1, 40))
    threshold = float(rng.choice([-1.0, 0.0, 0.5]))
    x = (rng.integers(0, 2, (n, 16)) * 2 - 1).astype(np.float32) / 4
    assert as_dict(mine_pair_arrays(x, threshold, k=k, block=block)) == brute_force(x, threshold, k)


def test_index_path_equals_tiled_path():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((400, 12)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    tiled = mine_pair_arrays(x, threshold=0.3, k=4, block=50)
    searched = mine_pair_arrays(x, threshold=0.3, k=4, block=50, index=VectorIndex.build(x))
    assert as_dict(tiled).keys() == as_dict(searched).keys()
    np.testing.assert_allclose(tiled.score, searched.score, atol=1e-5)


def test_five_copies_are_ten_pairs_and_one_group():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 32)).astype(np.float32)
    x[[3, 11, 17, 25, 38]] = x[3] + 0.001 * rng.standard_normal((5, 32))  # five near-copies
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    pairs = mine_pairs(x, threshold=0.99, k=10, block=8)
    assert len(pairs) == 10
    assert connected_groups(len(x), [(p.i, p.j) for p in pairs]) == [[3, 11, 17, 25, 38]]


def test_fewer_than_two_vectors_give_no_pairs():
    assert len(mine_pair_arrays(circle([0]), threshold=0.5)) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 1.5}, "threshold"),
        ({"k": 0}, "k and block"),
        ({"block": 0}, "k and block"),
        ({"vectors": np.full((3, 2), np.nan, dtype=np.float32)}, "NaN"),
        ({"index": VectorIndex.build(circle([0, 1]))}, "index holds 2 vectors"),
    ],
)
def test_bad_input_raises_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mine_pair_arrays(**{"vectors": circle([0, 1, 2]), "threshold": 0.5, **kwargs})


def test_chain_is_one_group():
    assert connected_groups(5, [(0, 1), (1, 2)]) == [[0, 1, 2]]


def test_groups_sorted_by_size_then_first_member():
    pairs = [(7, 8), (5, 2), (9, 6), (6, 4), (1, 0)]
    assert connected_groups(10, pairs) == [[4, 6, 9], [0, 1], [2, 5], [7, 8]]


def test_groups_accept_pair_objects_arrays_and_empty():
    dup = [DuplicatePair(0, 2, 0.9), DuplicatePair(2, 3, 0.8)]
    assert connected_groups(4, dup) == [[0, 2, 3]]
    arrays = PairArrays(np.array([0, 2]), np.array([2, 3]), np.array([0.9, 0.8], np.float32))
    assert connected_groups(4, arrays) == [[0, 2, 3]]
    assert connected_groups(4, np.array([[0, 2], [2, 3]])) == [[0, 2, 3]]
    assert connected_groups(4, []) == []


def test_groups_reject_ids_out_of_range():
    with pytest.raises(ValueError, match="pair ids"):
        connected_groups(3, [(0, 3)])
