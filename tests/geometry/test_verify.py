"""Geometric verification: edits, features and their cache, the check itself, kinds, calibration."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.demo.anatomy import sample_anatomy
from core.demo.dataset import CLASSES
from core.demo.phantom import render_phantom, sample_acquisition
from core.duplicates import proof as verified_mod
from core.duplicates.calibration.edits import EDITS, edit_image, make_copy
from core.duplicates.calibration.verification import bootstrap, choose_rule, precision_at
from core.duplicates.candidates import find_pairs
from core.duplicates.hashing import hash_files
from core.duplicates.proof import verify_candidates
from core.duplicates.rules import Rule, VerifyRule
from core.embed.embeddings import Embeddings
from core.geometry import features as features_mod
from core.geometry.features import features_of, image_features
from core.geometry.verify import verify_pair
from core.review.compare import difference, pair_evidence

REAL = Path("/work/shared/data/cxr")


def phantom(seed: int, size: int = 256) -> Image.Image:
    rng = np.random.default_rng(seed)
    return render_phantom(CLASSES[0], sample_anatomy(rng), sample_acquisition(rng), size, rng)


@pytest.fixture(scope="module")
def films(tmp_path_factory):
    """Two different phantoms (look-alikes: same generator, same class) and a cropped+rotated copy."""
    root = tmp_path_factory.mktemp("films")
    a, b = phantom(1), phantom(2)
    rng = np.random.default_rng(0)
    copy = edit_image(edit_image(a, "crop", rng), "rotate", rng)
    for name, img in (("a.png", a), ("b.png", b), ("copy.png", copy)):
        img.save(root / name)
    return root


@pytest.mark.parametrize("edit", EDITS)
def test_every_edit_gives_a_readable_copy_within_its_ranges(edit):
    img = phantom(3, 200)
    copy = make_copy(img, edit, np.random.default_rng(7))
    out = Image.open(io.BytesIO(copy.data))
    assert copy.suffix == (".jpg" if edit == "jpeg" else ".png")
    assert out.mode == "L"
    if edit == "crop":
        assert 0.6 * 200 <= out.width <= 200 and 0.6 * 200 <= out.height <= 200
        assert min(out.size) <= 0.9 * 200  # at least one side loses 10-20 %
    if edit == "downscale":
        assert 0.4 * 200 - 1 <= out.width <= 0.8 * 200 + 1
    if edit in ("rotate", "gamma", "text", "noise", "jpeg"):
        assert out.size == img.size and out.tobytes() != img.tobytes()


def test_unknown_edit_is_refused():
    with pytest.raises(ValueError, match="unknown edit"):
        make_copy(phantom(3, 64), "mirror", np.random.default_rng(0))


def test_cropped_and_rotated_copy_is_verified_and_a_look_alike_is_not(films):
    feats = {n: features_of(np.asarray(Image.open(films / n))) for n in ("a.png", "b.png", "copy.png")}
    copy = verify_pair(feats["a.png"], feats["copy.png"])
    other = verify_pair(feats["a.png"], feats["b.png"])
    rule = VerifyRule()
    assert rule.passes(copy.inliers, copy.agreement)
    assert not rule.passes(other.inliers, other.agreement)
    # the fitted similarity undoes a 2-10 degree rotation
    angle = np.degrees(np.arctan2(copy.matrix[1, 0], copy.matrix[0, 0]))
    assert 2 <= abs(angle) <= 10


def test_look_alike_at_cosine_above_099_is_similar_and_the_copy_is_a_copy(films):
    paths = ["a.png", "b.png", "copy.png"]
    # hand-made embeddings: a~b at cosine 0.995 (a look-alike), a~copy at 0.9 (the embedding misses it)
    v = np.array([[1.0, 0.0, 0.0], [0.995, np.sqrt(1 - 0.995**2), 0.0], [0.9, 0.0, np.sqrt(1 - 0.81)]])
    emb = Embeddings(paths, ["x"] * 3, ["", "", ""], ["p1", "p2", "p1"], v.astype(np.float32))
    hashes = hash_files(films, paths)
    rule = Rule(0.99, -1)
    pairs = find_pairs(emb, hashes, rule, k=2)
    table = image_features(films, paths, workers=1)
    out = {(p.a, p.b): p for p in verify_candidates(emb, hashes, pairs, table, VerifyRule(), k=2,
                                                     floor=0.5, workers=1)}
    assert out[("a.png", "b.png")].flagged and out[("a.png", "b.png")].kind == "similar"
    assert out[("a.png", "copy.png")].flagged and out[("a.png", "copy.png")].kind == "copy"
    assert out[("a.png", "copy.png")].inliers >= 20


def test_features_and_verifications_are_cached(films, tmp_path, monkeypatch):
    paths = ["a.png", "b.png", "copy.png"]
    cache = tmp_path / "features.npz"
    first = image_features(films, paths, cache=cache, workers=1)
    monkeypatch.setattr(features_mod, "features_of", lambda *_: pytest.fail("recomputed"))
    again = image_features(films, paths, cache=cache, workers=1)
    for x, y in zip(first.items, again.items, strict=True):
        assert np.array_equal(x.desc, y.desc) and np.array_equal(x.thumb, y.thumb)
    v = np.eye(3, dtype=np.float32)
    emb = Embeddings(paths, ["x"] * 3, [""] * 3, [""] * 3, v)
    hashes = hash_files(films, paths)
    stamps = verified_mod.file_stamps(films, paths)
    args = dict(k=2, floor=-1.0, cache=tmp_path / "verified.csv", stamps=stamps, workers=1)
    one = verify_candidates(emb, hashes, [], again, VerifyRule(), **args)
    calls = []
    monkeypatch.setattr(verified_mod, "verify_many", lambda t, todo, **_: calls.append(list(todo)) or [])
    two = verify_candidates(emb, hashes, [], again, VerifyRule(), **args)
    assert calls == [[]]  # nothing new to verify
    assert [(p.a, p.b, p.kind, p.inliers) for p in one] == [(p.a, p.b, p.kind, p.inliers) for p in two]
    assert [p.kind for p in two] == ["copy"]


def test_precision_at_a_prevalence_hand_computed():
    assert precision_at(0.9, 0.0, 0.01) == 1.0
    assert precision_at(0.0, 0.0, 0.01) == 1.0  # nothing flagged
    assert precision_at(1.0, 0.01, 0.01) == pytest.approx(0.01 / (0.01 + 0.99 * 0.01))  # ~0.503


def test_choose_rule_reaches_the_target_and_keeps_a_margin():
    pos = (np.array([100, 80, 60, 25]), np.array([0.99, 0.97, 0.95, 0.90]))
    neg = (np.array([50, 30, 10]), np.array([0.80, 0.60, 0.95]))
    rule = choose_rule(pos, neg, target=0.99, prevalence=0.01)
    assert rule.passes(*pos).all() and not rule.passes(*neg).any()
    assert rule.min_agreement == pytest.approx(0.90)  # the strictest rule that keeps every copy


def test_bootstrap_interval_contains_the_point():
    pos = (np.full(50, 40), np.r_[np.full(45, 0.95), np.full(5, 0.5)])
    neg = (np.full(200, 10), np.full(200, 0.3))
    prec, rec, by_edit = bootstrap(VerifyRule(20, 0.85), pos, ["crop"] * 25 + ["text"] * 25, neg, 0.01, n=200)
    assert rec.value == pytest.approx(0.9) and rec.low <= 0.9 <= rec.high
    assert prec.value == 1.0 and set(by_edit) == {"crop", "text"}
    assert by_edit["crop"].value == 1.0 and by_edit["text"].value == pytest.approx(0.8)


def test_pair_evidence_pictures(films):
    a = np.asarray(Image.open(films / "a.png"))
    copy = np.asarray(Image.open(films / "copy.png"))
    ev = pair_evidence(a, copy, display=128)
    assert ev.inliers >= 20 and ev.agreement > 0.85
    assert ev.overlay.shape == (128, 128, 3) and ev.difference.shape == (128, 128)
    assert ev.matches.shape[0] == 128 and ev.matches.shape[2] == 3
    flat = np.full((8, 8), 7, np.uint8)
    assert not difference(flat, flat).any()
    gamma = (np.linspace(0, 1, 64).reshape(8, 8) ** 2 * 255).astype(np.uint8)
    assert not difference(np.linspace(0, 255, 64).reshape(8, 8).astype(np.uint8), gamma).any()


@pytest.mark.skipif(not (REAL / "near_duplicates.csv").is_file(), reason="needs ../shared/data/cxr")
def test_real_films_copy_found_and_two_childrens_look_alike_films_are_not_copies():
    def feats(rel):
        return features_of(np.asarray(Image.open(REAL / rel).convert("L")))

    # two different children's normal films, cosine 0.998 under the dev-set quick model (README)
    a, b = feats("Normal/kermany_IM-0017-0001.png"), feats("Normal/kermany_IM-0043-0001.png")
    v = verify_pair(a, b)
    assert not VerifyRule().passes(v.inliers, v.agreement)
    img = Image.open(REAL / "Normal/kermany_IM-0017-0001.png").convert("L")
    rng = np.random.default_rng(3)
    copy = edit_image(edit_image(img, "crop", rng), "rotate", rng)
    c = verify_pair(a, features_of(np.asarray(copy)))
    assert VerifyRule().passes(c.inliers, c.agreement)


def test_hamming_table_by_hand():
    from core.geometry.verify import hamming_table

    a = np.zeros((2, 32), np.uint8)
    a[1, 0] = 0b1011  # 3 bits
    b = np.zeros((3, 32), np.uint8)
    b[1, 31] = 0xFF  # 8 bits, in the last byte
    b[2] = 0xFF  # all 256 bits: past uint8
    assert hamming_table(a, b).tolist() == [[0, 8, 256], [3, 11, 253]]


def test_ratio_test_keeps_clear_matches_and_drops_ambiguous_ones():
    from core.geometry.features import ImageFeatures
    from core.geometry.verify import match_points

    rng = np.random.default_rng(0)
    desc = rng.integers(0, 256, (6, 32), np.uint8)
    pts = np.arange(12, dtype=np.float32).reshape(6, 2)
    b_desc = np.concatenate([desc[::-1], desc[:1]])  # desc[0] twice: a's row 0 is ambiguous
    b_pts = np.concatenate([pts[::-1], [[99, 99]]]).astype(np.float32)
    pa, pb = match_points(ImageFeatures(pts, desc, np.zeros((4, 4), np.uint8)),
                          ImageFeatures(b_pts, b_desc, np.zeros((4, 4), np.uint8)))
    assert pa.tolist() == pts[1:].tolist()  # rows 1..5 match exactly, row 0 fails the ratio test
    assert pb.tolist() == pts[1:].tolist()  # ...onto the same points
