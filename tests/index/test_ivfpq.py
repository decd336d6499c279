"""IVF-PQ kind: settings, build in memory and from shards, save/load (and old files), recall measures."""

import json

import numpy as np
import pytest

from core.index.ivfpq import MIN_TRAIN, choose_settings
from core.index.recall import exact_top_k, recall_at_k, sample_recall
from core.index.refine import refine_search
from core.index.shard_rows import gather_rows
from core.index.vectors import VectorIndex


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    """2,000 vectors in 16-d around 40 centres, with rows 1000..1009 near-copies of rows 0..9."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((40, 16))
    x = centres[rng.integers(0, 40, 2000)] + 0.5 * rng.standard_normal((2000, 16))
    x[1000:1010] = x[:10] + 0.01 * rng.standard_normal((10, 16))
    return unit_rows(x)


@pytest.fixture(scope="module")
def ivf(data) -> VectorIndex:
    return VectorIndex.build(data, "ivfpq")


def test_settings_follow_the_size():
    small, large = choose_settings(10_000, 512), choose_settings(10_000_000, 512)
    assert (small.nlist, small.m) == (128, 64) and small.bytes_per_vector() == 72
    assert large.nlist == 4096 and 8 <= large.nprobe <= 128
    assert choose_settings(5_000, 30).m == 6  # the largest divisor of 30 up to 30 / 4
    with pytest.raises(ValueError, match="at least 1,000"):
        choose_settings(MIN_TRAIN - 1, 16)


def test_ivfpq_finds_near_copies_and_round_trips(tmp_path, data, ivf):
    assert ivf.kind == "ivfpq" and ivf.ntotal == 2000
    ivf.nprobe = ivf.nprobe  # settable
    ids = ivf.search(data[:10], 5).ids  # approximate order: the copy within the top 5
    assert all({i, 1000 + i} <= set(ids[i]) for i in range(10))
    ivf.report = {"recall_at_10": 0.5}
    ivf.save(tmp_path / "i.faiss")
    meta = json.loads((tmp_path / "i.faiss.json").read_text())
    assert meta["kind"] == "ivfpq" and meta["format"] == 2 and meta["ivfpq"]["m"] == 4
    back = VectorIndex.load(tmp_path / "i.faiss")
    assert (back.kind, back.nprobe, back.report) == ("ivfpq", ivf.nprobe, {"recall_at_10": 0.5})
    np.testing.assert_array_equal(back.search(data[:50], 5).ids, ivf.search(data[:50], 5).ids)


def test_auto_picks_ivfpq_past_the_threshold_and_create_refuses_it(data):
    assert VectorIndex.build(data, exact_below=100, ivfpq_from=1500).kind == "ivfpq"
    assert VectorIndex.build(data, exact_below=100, ivfpq_from=5000).kind == "hnsw"
    with pytest.raises(ValueError, match="trained"):
        VectorIndex.create(16, "ivfpq")
    with pytest.raises(ValueError, match="at least 1,000"):
        VectorIndex.build(data[:500], "ivfpq")


def test_from_shards_trains_on_a_sample_and_keeps_shard_order(tmp_path, data):
    np.save(tmp_path / "a.npy", data[:700])
    np.save(tmp_path / "b.npy", data[700:])
    index = VectorIndex.build_from_shards([tmp_path / "a.npy", tmp_path / "b.npy"], "ivfpq")
    assert index.kind == "ivfpq" and index.ntotal == 2000
    assert set(index.search(data[1005], 2).ids[0]) == {5, 1005}


def test_a_format_1_settings_file_still_loads(tmp_path, data):
    VectorIndex.build(data, "exact").save(tmp_path / "old.faiss")
    meta_path = tmp_path / "old.faiss.json"
    meta = json.loads(meta_path.read_text())
    meta = {k: meta[k] for k in ("kind", "dim", "ntotal", "hnsw_m", "ef_search", "faiss_version")}
    meta_path.write_text(json.dumps(meta | {"format": 1}))
    assert VectorIndex.load(tmp_path / "old.faiss").kind == "exact"


def test_a_settings_file_naming_the_wrong_kind_is_refused(tmp_path, data, ivf):
    ivf.save(tmp_path / "i.faiss")
    meta_path = tmp_path / "i.faiss.json"
    meta_path.write_text(json.dumps(json.loads(meta_path.read_text()) | {"kind": "hnsw"}))
    with pytest.raises(ValueError, match="does not hold"):
        VectorIndex.load(tmp_path / "i.faiss")


def test_recall_at_k_by_hand():
    found = np.array([[1, 2, 3], [4, 5, -1]])
    truth = np.array([[3, 2, 9], [4, 6, 7]])
    assert recall_at_k(found, truth) == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert recall_at_k(np.array([[-1]]), np.array([[-1]])) == 1.0


def test_gather_rows_and_exact_top_k_read_across_shards(data):
    shards = [data[:300], data[300:1200], data[1200:]]
    rows = np.array([1500, 2, 299, 300, 1999])
    np.testing.assert_array_equal(gather_rows(shards, rows), data[rows])
    top = exact_top_k(shards, data[:20], 3, exclude=np.arange(20))
    sims = data[:20] @ data.T
    sims[np.arange(20), np.arange(20)] = -np.inf
    np.testing.assert_array_equal(top, np.argsort(-sims, axis=1, kind="stable")[:, :3])
    with pytest.raises(ValueError, match="row ids"):
        gather_rows(shards, np.array([2000]))


def test_sample_recall_is_one_for_exact_and_below_for_ivfpq(data, ivf):
    shards = [data[:1000], data[1000:]]
    assert sample_recall(VectorIndex.build(data, "exact"), shards, 50)["recall_at_10"] == 1.0
    r = sample_recall(ivf, shards, 50)
    assert r["queries"] == 50 and 0.2 < r["recall_at_10"] <= 1.0


def test_refine_gives_exact_scores_and_order(data, ivf):
    found = refine_search(ivf, data[:10], 2, lambda ids: data[ids])
    assert all(set(found.ids[i]) == {i, 1000 + i} for i in range(10))
    exact = data[:10] @ data.T
    np.testing.assert_allclose(found.scores, np.take_along_axis(exact, found.ids, 1), atol=1e-6)
    plain = VectorIndex.build(data, "exact")
    np.testing.assert_array_equal(refine_search(plain, data[:5], 3, None).ids,
                                  plain.search(data[:5], 3).ids)
