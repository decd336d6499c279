"""Re-exported copies (issue 31): stretched to another aspect, rotated with white fill, and the
real pneumonia-7 pair of the development set, which a similarity fit could not align."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.demo.anatomy import sample_anatomy
from core.demo.dataset import CLASSES
from core.demo.phantom import render_phantom, sample_acquisition
from core.duplicates.calibration.edits import EDIT_KINDS, EDITS, edit_image, make_copy
from core.duplicates.rules import VerifyRule
from core.geometry.features import features_of
from core.geometry.verify import affine_ok, fit_similarity, verify_pair

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cxr"
PNEUMONIA_7 = ("Bacterial_Pneumonia/ieee8023_pneumonia-7.png",
               "Bacterial_Pneumonia/ieee8023_streptococcus-pneumoniae-pneumonia-temporal-evolution-1-day1.png")


def phantom(seed: int, size: int = 192) -> Image.Image:
    rng = np.random.default_rng(seed)
    return render_phantom(CLASSES[0], sample_anatomy(rng), sample_acquisition(rng), size, rng)


def test_new_families_are_edits_but_not_demo_kinds():
    assert {"crop_resize", "rotate_white", "crop_gamma_jpeg", "rotate_gamma_jpeg"} <= set(EDITS)
    assert set(EDIT_KINDS).isdisjoint({"crop_resize", "rotate_white"})  # the demo set is unchanged


def test_crop_resize_keeps_the_size_and_stretches_the_film():
    img = phantom(1)
    w, h = img.size
    out = edit_image(img, "crop_resize", np.random.default_rng(4))
    assert out.size == (w, h) and out.tobytes() != img.tobytes()


def test_rotate_white_fills_the_corners_with_white():
    out = np.asarray(edit_image(phantom(1), "rotate_white", np.random.default_rng(0)))
    assert out[0, 0] == 255 or out[0, -1] == 255 or out[-1, 0] == 255 or out[-1, -1] == 255


@pytest.mark.parametrize("m, ok", [
    ([[1.3, 0.0, 0.0], [0.0, 1.0, 0.0]], True),  # another aspect, stretched back
    ([[0.98, -0.17, 5.0], [0.17, 0.98, 3.0]], True),  # a 10 degree rotation
    ([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0]], False),  # shear
    ([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], False),  # a mirror image
    ([[3.0, 0.0, 0.0], [0.0, 1.0, 0.0]], False),  # x three times y: no re-export
])
def test_affine_bounds(m, ok):
    assert affine_ok(np.array(m)) is ok


@pytest.mark.parametrize("edit", ["crop_resize", "rotate_white", "crop_gamma_jpeg"])
def test_reexported_copy_is_verified_and_a_look_alike_is_not(edit):
    img = phantom(1)
    rng = np.random.default_rng(11)
    copy = np.asarray(Image.open(__import__("io").BytesIO(make_copy(img, edit, rng).data)))
    a = features_of(np.asarray(img))
    v = verify_pair(a, features_of(copy))
    assert VerifyRule().passes(v.inliers, v.agreement), v
    other = verify_pair(a, features_of(np.asarray(phantom(2))))
    assert not VerifyRule().passes(other.inliers, other.agreement)


def test_a_stretched_copy_is_what_the_similarity_fit_misses():
    """The measurement behind the affine fit, in small: one copy stretched 25 % in y."""
    img = phantom(1)
    w, h = img.size
    stretched = img.crop((0, round(0.1 * h), w, h - round(0.1 * h))).resize((w, h), Image.Resampling.BILINEAR)
    a, b = features_of(np.asarray(img)), features_of(np.asarray(stretched))
    sim = verify_pair(a, b, fit_similarity)
    aff = verify_pair(a, b)
    assert aff.agreement >= 0.95 > sim.agreement


@pytest.mark.realdata
@pytest.mark.skipif(not (REAL / PNEUMONIA_7[0]).is_file(), reason="needs ../shared/data/cxr")
def test_pneumonia_7_and_its_stretched_re_export_are_one_film():
    def feats(rel: str):
        return features_of(np.asarray(Image.open(REAL / rel).convert("L")))

    a, b = feats(PNEUMONIA_7[0]), feats(PNEUMONIA_7[1])
    for v in (verify_pair(a, b), verify_pair(b, a)):
        assert VerifyRule(40, 0.95).passes(v.inliers, v.agreement), v


def test_verifications_cached_by_an_older_check_are_not_reused(tmp_path):
    """verified.csv written before the affine fit (no verifier column) is verified again."""
    from core.duplicates import proof
    from core.duplicates.hashing import hash_files
    from core.embed.embeddings import Embeddings
    from core.geometry.features import image_features

    img = phantom(1)
    img.save(tmp_path / "a.png")
    edit_image(img, "crop_resize", np.random.default_rng(4)).save(tmp_path / "b.png")
    paths = ["a.png", "b.png"]
    stamps = proof.file_stamps(tmp_path, paths)
    cache = tmp_path / "verified.csv"
    cache.write_text("a,b,stamp_a,stamp_b,inliers,agreement,overlap\n"
                     f"a.png,b.png,{stamps[0]},{stamps[1]},0,0.0,0.0\n")
    emb = Embeddings(paths, ["x"] * 2, [""] * 2, [""] * 2, np.eye(2, dtype=np.float32))
    pairs = proof.verify_candidates(emb, hash_files(tmp_path, paths), [], image_features(tmp_path, paths, workers=1),
                                    VerifyRule(), k=1, floor=-1.0, cache=cache, stamps=stamps, workers=1)
    assert [p.kind for p in pairs] == ["copy"]
    assert proof._read_cache(cache)  # rewritten by this check, and reused next time


def test_a_one_pixel_strip_has_no_features_and_verifies_as_nothing():
    """ORB's pyramid raised cv2.error on a strip (Search's copy check met one)."""
    strip = np.full((1, 300), 128, np.uint8)
    f = features_of(strip)
    assert len(f.desc) == 0 and f.thumb.shape[0] >= 1
    assert verify_pair(features_of(np.asarray(phantom(1))), f).inliers == 0
