"""Search's copy check: identical pixels or a near-identical pHash, or a calibrated rule; never a bare cosine."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from core.duplicates.query import copy_rule, find_copy
from core.retrieval.search import Hit


def _film(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:128, 0:128] / 128
    base = 0.5 + 0.3 * np.sin(6 * x + seed) * np.cos(5 * y - seed)
    return np.clip(base + rng.normal(0, 0.02, base.shape), 0, 1).astype(np.float32)


def _save(root, name: str, pixels: np.ndarray) -> str:
    Image.fromarray((pixels * 255).round().astype(np.uint8), "L").save(root / name)
    return name


def test_identical_and_near_hash_copies_are_found_a_cosine_alone_is_not(tmp_path):
    other, film = _save(tmp_path, "other.png", _film(1)), _save(tmp_path, "film.png", _film(2))
    query = np.asarray(Image.open(tmp_path / film), np.float32) / 255
    hits = [Hit(1, other, "N", 0.999), Hit(2, film, "N", 0.97)]
    none = copy_rule(tmp_path)
    assert none.calibrated is None and "A cosine alone never counts" in none.describe()
    match = find_copy(query, hits, tmp_path, none)
    assert match is not None and match.hit.rank == 2 and match.reason == "identical pixels"
    brighter = np.clip(query * 0.97 + 0.01, 0, 1)  # re-exposed copy: same pHash, other pixels
    match = find_copy(brighter, hits, tmp_path, none)
    assert match is not None and match.hit.rank == 2 and match.reason.startswith("pHash distance")
    assert find_copy(_film(3), hits, tmp_path, none) is None  # cosine 0.999 is not proof


def test_only_an_auto_calibrated_rule_adds_the_cosine(tmp_path):
    other = _save(tmp_path, "other.png", _film(1))
    hits = [Hit(1, other, "N", 0.9)]
    doc = {"method": "fixed", "rule": {"threshold": 0.5, "hash_threshold": -1}, "pairs": [],
           "groups": [], "run": str(tmp_path), "data": str(tmp_path), "n_images": 1,
           "estimated_precision": None, "estimated_recall": None}  # as save_result writes it
    (tmp_path / "duplicates.json").write_text(json.dumps(doc))
    assert copy_rule(tmp_path).calibrated is None  # a hand-set threshold never warns
    (tmp_path / "duplicates.json").write_text(json.dumps({**doc, "method": "auto"}))
    rule = copy_rule(tmp_path)
    assert rule.calibrated is not None and "calibrated rule (cosine ≥ 0.5000)" in rule.describe()
    match = find_copy(_film(3), hits, tmp_path, rule)
    assert match is not None and "pass the calibrated rule" in match.reason


def test_a_stretched_and_rotated_copy_is_verified_by_the_search_check(tmp_path):
    """Issue 31: a re-export whose pHash moved far is still the same radiograph."""
    from core.demo.anatomy import sample_anatomy
    from core.demo.dataset import CLASSES
    from core.demo.phantom import render_phantom, sample_acquisition
    from core.duplicates.calibration.edits import edit_image
    from core.duplicates.hashing import hamming, hash_pixels

    films = []
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        films.append(render_phantom(CLASSES[0], sample_anatomy(rng), sample_acquisition(rng), 192, rng))
        films[-1].save(tmp_path / f"{seed}.png")
    rng = np.random.default_rng(5)
    copy = edit_image(edit_image(films[0], "crop_resize", rng), "rotate_white", rng)
    query = np.asarray(copy, np.float32) / 255
    original = np.asarray(films[0], np.float32) / 255
    assert hamming(hash_pixels(query).phash, hash_pixels(original).phash) > 2  # no hash evidence
    hits = [Hit(1, "2.png", "N", 0.99), Hit(2, "1.png", "N", 0.9)]
    match = find_copy(query, hits, tmp_path, copy_rule(tmp_path))
    assert match is not None and match.hit.rank == 2 and match.reason.startswith("verified copy")
    assert find_copy(np.asarray(films[1], np.float32)[::-1] / 255, hits[1:], tmp_path, copy_rule(tmp_path)) is None
