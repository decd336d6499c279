"""Copy candidates by shared local features (issue 31): a stretched or rotated copy finds its
original whatever the class embedding says."""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.demo.anatomy import sample_anatomy
from core.demo.dataset import CLASSES
from core.demo.phantom import render_phantom, sample_acquisition
from core.duplicates.calibration.edits import edit_image
from core.duplicates.copy_candidates import copy_candidate_pairs
from core.duplicates.hashing import hash_files
from core.duplicates.proof import candidate_rows
from core.embed.embeddings import Embeddings
from core.geometry.features import FeatureTable, features_of


def phantom(seed: int, size: int = 160) -> Image.Image:
    rng = np.random.default_rng(seed)
    return render_phantom(CLASSES[seed % len(CLASSES)], sample_anatomy(rng), sample_acquisition(rng), size, rng)


def _table() -> FeatureTable:
    films = [phantom(s) for s in range(6)]
    rng = np.random.default_rng(3)
    films += [edit_image(films[0], "crop_resize", rng), edit_image(films[1], "rotate_white", rng)]
    items = [features_of(np.asarray(f)) for f in films] + [None]  # the last one unreadable
    return FeatureTable([f"{x}.png" for x in range(len(items))], items, {len(items) - 1: "unreadable"})


def test_each_copy_finds_its_original_among_its_most_voted_images():
    pairs = copy_candidate_pairs(_table(), k=1)
    got = {tuple(p) for p in pairs.tolist()}
    assert (0, 6) in got and (1, 7) in got
    assert all(i < j for i, j in got) and not any(8 in p for p in got)


def test_candidate_rows_add_the_copies_the_embedding_misses(tmp_path):
    table = _table()
    n = len(table.items)
    for x, f in enumerate(table.items[:-1]):
        Image.fromarray(f.thumb).save(tmp_path / f"{x}.png")
    # the embedding puts every film far from every other: no kNN pair reaches the floor
    emb = Embeddings(table.paths, ["x"] * n, [""] * n, [""] * n, np.eye(n, dtype=np.float32))
    hashes = hash_files(tmp_path, table.paths)
    assert len(candidate_rows(emb, hashes, [], k=1)) == 0
    rows = {tuple(p) for p in candidate_rows(emb, hashes, [], k=1, table=table).tolist()}
    assert {(0, 6), (1, 7)} <= rows


def test_calibration_sets_aside_a_copy_the_dataset_already_holds(tmp_path):
    """A bystander's nearest film that is its own unlisted copy is no known non-copy."""
    from core.duplicates.calibration.verification import calibrate_verification
    from core.geometry.features import image_features

    films = [phantom(s) for s in range(4)]
    films.append(edit_image(films[0], "crop_resize", np.random.default_rng(3)))  # 0's unlisted copy
    paths = [f"{x}.png" for x in range(len(films))]
    for p, f in zip(paths, films, strict=True):
        f.save(tmp_path / p)
    vectors = np.eye(len(films), dtype=np.float32)
    vectors[4] = vectors[0]  # the embedding puts the copy next to its original
    table = image_features(tmp_path, paths, workers=1)
    cal = calibrate_verification(tmp_path, paths, vectors, table, originals=[1], bystanders=[0, 2, 3],
                                 k=1, workers=1)
    assert cal.set_aside == [("0.png", "4.png")]
    assert cal.to_dict()["n_set_aside"] == 1
    assert cal.neg_inliers.size >= 1 and not ((cal.neg_inliers >= 100) & (cal.neg_agreement >= 0.94)).any()
