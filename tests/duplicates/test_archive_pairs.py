"""Archive-scale mining: candidates through any index kind, in blocks, equal the exact miner's."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from core.duplicates.archive_pairs import archive_duplicates, candidate_pairs
from core.duplicates.neighbours import mine_pair_arrays
from core.index.vectors import VectorIndex


def _planted(n: int = 1500, dim: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x[n // 2:n // 2 + 30] = x[:30] + 0.02 * rng.standard_normal((30, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivfpq"])
def test_candidates_in_blocks_match_the_exact_miner(kind):
    x = _planted()
    shards = [x[:400], x[400:1100], x[1100:]]
    index = VectorIndex.build(x, kind)
    pairs, scores = candidate_pairs(shards, index, k=5, floor=0.9, block=256)
    want = mine_pair_arrays(x, 0.9, k=5)
    assert {tuple(p) for p in pairs.tolist()} == set(zip(want.i.tolist(), want.j.tolist(),
                                                         strict=True))
    np.testing.assert_allclose(scores, np.einsum("pd,pd->p", x[pairs[:, 0]], x[pairs[:, 1]]),
                               atol=1e-6)
    assert np.all(np.diff(scores) <= 0)
    with pytest.raises(ValueError, match="rows"):
        candidate_pairs(shards[:2], index)


def test_archive_duplicates_finds_a_byte_copy_and_verifies_a_transformed_one(tmp_path):
    import torch
    from PIL import Image

    from core.config import make_run_config
    from core.demo.dataset import write_demo_dataset
    from core.embed.shards import embed_archive
    from core.index.from_shards import build_index_from_shards
    from core.model.checkpoint import save_checkpoint
    from core.model.network import build_model
    from core.run_folder import RunPaths

    data = write_demo_dataset(tmp_path / "images", per_class=4, size=128, seed=0,
                              duplicate_fraction=0.0).root
    films = sorted(data.rglob("*.png"))
    shutil.copy(films[0], data / "byte-copy.png")
    Image.open(films[1]).rotate(4).crop((6, 6, 122, 122)).save(data / "rotated-copy.png")
    config = make_run_config(str(data), "tiny")
    torch.manual_seed(0)
    save_checkpoint(RunPaths(tmp_path / "run").best, build_model(config.model), config, epoch=0)
    embed_archive(tmp_path / "run", data, tmp_path / "out", precision="fp32", workers=0)
    build_index_from_shards(tmp_path / "out", "exact")
    pairs = archive_duplicates(tmp_path / "out", data, threshold=0.999, floor=0.0, k=5)
    by_kind = {(p.a, p.b): p.kind for p in pairs}
    first = films[0].relative_to(data).as_posix()
    assert by_kind[tuple(sorted((first, "byte-copy.png")))] == "exact"
    second = films[1].relative_to(data).as_posix()
    rotated = tuple(sorted((second, "rotated-copy.png")))
    assert by_kind.get(rotated) == "copy", pairs
