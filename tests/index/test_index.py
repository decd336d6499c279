"""VectorIndex: exact search against numpy, HNSW recall, save/load, shards, bad input."""

import json

import numpy as np
import pytest

from core.index.vectors import VectorIndex, validate_vectors


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered(n: int, dim: int, n_centres: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_centres, dim))
    return unit_rows(centres[rng.integers(0, n_centres, n)] + 0.4 * rng.standard_normal((n, dim)))


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return unit_rows(np.random.default_rng(0).standard_normal((500, 24)))


def test_exact_search_equals_numpy_brute_force(vectors):
    index = VectorIndex.build(vectors, kind="exact")
    queries = vectors[:40]
    scores, ids = index.search(queries, 7)
    sims = queries @ vectors.T  # (40, 500)
    expected = np.argsort(-sims, axis=1)[:, :7]
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(sims, expected, axis=1), atol=1e-5)
    assert ids[:, 0].tolist() == list(range(40))  # each query finds itself first


@pytest.mark.parametrize("n_queries", [1, 5, 19, 20, 40])  # few: one BLAS product; 20+: FAISS
def test_exact_search_is_the_same_for_few_and_many_queries(vectors, n_queries):
    index = VectorIndex.build(vectors, kind="exact")
    queries = unit_rows(vectors[:n_queries] + 0.3 * vectors[100:100 + n_queries])
    scores, ids = index.search(queries, 10)
    sims = queries @ vectors.T  # (Q, 500)
    expected = np.argsort(-sims, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(sims, expected, axis=1), atol=1e-5)


def test_exact_copies_come_back_in_id_order(vectors):
    # Three copies of every row: a single query sees its equal-score copies smallest id first,
    # also when the k-th place falls among them.
    index = VectorIndex.build(np.concatenate([vectors, vectors, vectors]), kind="exact")
    for k in (2, 3, 5):
        _, ids = index.search(vectors[7], k)
        assert ids[0, :3].tolist() == [7, 507, 1007][:k]


def test_auto_kind_switches_at_exact_below(vectors):
    assert VectorIndex.build(vectors).kind == "exact"
    auto = VectorIndex.build(vectors, exact_below=100)
    assert auto.kind == "hnsw" and auto.ntotal == 500 and auto.dim == 24


def test_hnsw_recall_at_10_on_clustered_vectors():
    # Isotropic noise around 200 centres: harder than real embeddings, which lie near a
    # low-dimensional surface (there HNSW reaches recall 1.0 at these settings).
    data = clustered(20_000, 32, 200, seed=1)
    queries = clustered(300, 32, 200, seed=2)
    hnsw = VectorIndex.build(data, kind="hnsw")  # the defaults a run gets
    _, approx = hnsw.search(queries, 10)
    _, exact = VectorIndex.build(data, kind="exact").search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx, exact, strict=True)])
    assert recall >= 0.95


def test_k_larger_than_index_is_padded(vectors):
    index = VectorIndex.build(vectors[:3], kind="exact")
    scores, ids = index.search(vectors[:2], 5)
    assert ids.shape == scores.shape == (2, 5)
    assert (ids[:, 3:] == -1).all() and np.isneginf(scores[:, 3:]).all()
    assert sorted(ids[0, :3].tolist()) == [0, 1, 2]


def test_single_query_vector_is_accepted(vectors):
    scores, ids = VectorIndex.build(vectors).search(vectors[5], 3)
    assert ids.shape == (1, 3) and ids[0, 0] == 5


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_save_load_roundtrip(tmp_path, vectors, kind):
    index = VectorIndex.build(vectors, kind=kind, hnsw_m=8, ef_search=77)
    path = tmp_path / "index.faiss"
    index.save(path)
    meta = json.loads((tmp_path / "index.faiss.json").read_text())
    assert meta["kind"] == kind and meta["ef_search"] == 77 and meta["ntotal"] == 500
    loaded = VectorIndex.load(path)
    assert (loaded.kind, loaded.ntotal, loaded.dim, loaded.ef_search) == (kind, 500, 24, 77)
    before, after = index.search(vectors[:10], 5), loaded.search(vectors[:10], 5)
    np.testing.assert_array_equal(before.ids, after.ids)
    np.testing.assert_allclose(before.scores, after.scores)
    assert not list(tmp_path.glob("*.tmp"))


def test_load_missing_or_corrupt_index(tmp_path, vectors):
    with pytest.raises(FileNotFoundError, match="no index file"):
        VectorIndex.load(tmp_path / "absent.faiss")
    path = tmp_path / "index.faiss"
    VectorIndex.build(vectors).save(path)
    path.write_bytes(b"not a faiss index")
    with pytest.raises(ValueError, match="unreadable or corrupt"):
        VectorIndex.load(path)


def test_build_from_shards_matches_build(tmp_path, vectors):
    paths = []
    for i, part in enumerate(np.array_split(vectors, [120, 120, 400])):  # includes an empty shard
        paths.append(tmp_path / f"shard_{i}.npy")
        np.save(paths[-1], part)
    from_shards = VectorIndex.build_from_shards(paths)
    assert from_shards.ntotal == 500 and from_shards.kind == "exact"
    np.testing.assert_array_equal(
        from_shards.search(vectors[:20], 5).ids,
        VectorIndex.build(vectors).search(vectors[:20], 5).ids,
    )
    assert VectorIndex.build_from_shards(paths, exact_below=100).kind == "hnsw"


def test_shards_with_mismatched_dims_are_refused(tmp_path, vectors):
    np.save(tmp_path / "a.npy", vectors[:10])
    np.save(tmp_path / "b.npy", unit_rows(np.ones((5, 8))))
    with pytest.raises(ValueError, match="has dimension 8"):
        VectorIndex.build_from_shards([tmp_path / "a.npy", tmp_path / "b.npy"])
    with pytest.raises(ValueError, match="no embedding shards"):
        VectorIndex.build_from_shards([])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.ones(24, dtype=np.float32), "2-D"),
        (unit_rows(np.ones((3, 5))), "dimension 5"),
        (np.full((3, 24), np.nan, dtype=np.float32), "NaN or infinite"),
        (np.ones((3, 24), dtype=np.float32), "L2-normalised"),
        (np.ones((3, 24), dtype=np.int64), "floating point"),
    ],
)
def test_bad_vectors_are_refused(vectors, bad, message):
    index = VectorIndex.build(vectors)
    with pytest.raises(ValueError, match=message):
        index.add(bad)
    if bad.ndim == 2:
        with pytest.raises(ValueError, match=message):
            index.search(bad, 3)


def test_bad_options_are_refused(vectors):
    with pytest.raises(ValueError, match="unknown index kind"):
        VectorIndex.build(vectors, kind="ivf")
    with pytest.raises(ValueError, match="zero vectors"):
        VectorIndex.build(np.zeros((0, 24), dtype=np.float32))
    with pytest.raises(ValueError, match="k must be"):
        VectorIndex.build(vectors).search(vectors[:1], 0)


def test_validate_vectors_converts_float64():
    out = validate_vectors(unit_rows(np.ones((2, 3))).astype(np.float64))
    assert out.dtype == np.float32 and out.flags.c_contiguous
