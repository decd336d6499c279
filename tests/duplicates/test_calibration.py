"""Thresholds from known answers: hand-computed cases, a synthetic set, verdicts, copies."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import precision_score, recall_score

from core.duplicates.calibration.auto import calibrate_known
from core.duplicates.calibration.edits import EDIT_KINDS
from core.duplicates.calibration.known_pairs import build_synthetic_set, make_copies, singletons
from core.duplicates.calibration.thresholds import (
    calibrate_from_verdicts,
    calibrate_rule,
    hash_threshold_for_precision,
    precision_recall,
    threshold_for_precision,
)
from core.duplicates.hashing import hash_files
from core.duplicates.rules import CalibrationError, Rule


def test_threshold_hand_computed():
    pos, neg = [0.9, 0.8, 0.7], [0.75, 0.5]
    strict = threshold_for_precision(pos, neg, target=1.0)
    assert (strict.threshold, strict.precision, strict.recall, strict.reached) == (0.8, 1.0, 2 / 3, True)
    loose = threshold_for_precision(pos, neg, target=0.7)  # at 0.7: 3 of 4 flagged are right
    assert (loose.threshold, loose.precision, loose.recall) == (0.7, 0.75, 1.0)


def test_tied_scores_count_together():
    # At 0.8 both positives and the negative tie: precision 2/3, never 1.
    choice = threshold_for_precision([0.8, 0.8], [0.8], target=0.9)
    assert not choice.reached and choice.precision == pytest.approx(2 / 3)


def test_unreachable_target_returns_the_most_precise():
    choice = threshold_for_precision([0.5, 0.4], [0.9, 0.95], target=0.99)
    assert not choice.reached
    assert choice.threshold == 0.4 and choice.precision == 0.5


def test_no_positives_is_an_error():
    with pytest.raises(CalibrationError):
        threshold_for_precision([], [0.1])


def test_hash_threshold_hand_computed():
    choice = hash_threshold_for_precision([0, 2, 3, 10], [5, 7, 12], target=0.99)
    assert (choice.threshold, choice.precision, choice.recall) == (4, 1.0, 0.75)


def test_precision_recall_matches_sklearn():
    rng = np.random.default_rng(0)
    truth = rng.uniform(size=200) < 0.3
    pred = rng.uniform(size=200) < 0.4
    p, r = precision_recall(pred[truth], pred[~truth])
    assert p == pytest.approx(precision_score(truth, pred))
    assert r == pytest.approx(recall_score(truth, pred))


def test_combined_rule_finds_what_each_signal_misses():
    """Half the duplicates only the hash sees, half only the embedding: both together find all."""
    rng = np.random.default_rng(1)
    pos_score = np.r_[rng.uniform(0.3, 0.6, 50), rng.uniform(0.97, 1.0, 50)]
    pos_hash = np.r_[rng.integers(0, 4, 50), rng.integers(20, 40, 50)]
    neg_score = rng.uniform(0.3, 0.9, 500)
    neg_hash = rng.integers(10, 40, 500)
    choice = calibrate_rule(pos_score, pos_hash, neg_score, neg_hash, target=0.99)
    assert choice.reached and choice.recall == 1.0 and choice.precision == 1.0
    assert 3 <= choice.rule.hash_threshold < 10
    assert choice.rule.threshold == pos_score[50:].min()  # the lowest that keeps every impostor out
    emb = threshold_for_precision(pos_score, neg_score, 0.99)
    hsh = hash_threshold_for_precision(pos_hash, neg_hash, 0.99)
    assert emb.recall == pytest.approx(0.5) and hsh.recall == pytest.approx(0.5)


def test_rule_flags():
    rule = Rule(threshold=0.9, hash_threshold=2, hash_floor=0.5)
    flags = rule.flags(np.array([0.1, 0.6, 0.95, 0.4]), np.array([2, 2, 30, 0]))
    assert flags.tolist() == [False, True, True, False]  # a hash match needs cosine >= 0.5
    assert Rule(2.0, 2).flags(np.array([-0.5, 0.99]), np.array([2, 3])).tolist() == [True, False]


def test_calibration_from_verdicts():
    scores = np.array([0.99, 0.97, 0.95, 0.93, 0.91])
    dup = np.array([True, True, False, True, False])
    cal = calibrate_from_verdicts(scores, dup, threshold=0.94, target=0.99)
    assert (cal.n_duplicate, cal.n_not_duplicate) == (3, 2)
    assert cal.precision == pytest.approx(2 / 3) and cal.recall == pytest.approx(2 / 3)
    assert cal.suggested.threshold == 0.97 and cal.suggested.reached
    empty = calibrate_from_verdicts(np.array([0.5]), np.array([False]), threshold=0.9)
    assert empty.recall is None and empty.suggested is None and empty.precision is None


def _blobs(tmp_path, n=12, size=48):
    """Distinct grey images: random blobs, one file each."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        img = np.zeros((size, size), np.float32)
        for _ in range(6):
            cy, cx = rng.integers(0, size, 2)
            yy, xx = np.mgrid[:size, :size]
            img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(3, 9) ** 2))
        img = (255 * img / img.max()).astype(np.uint8)
        path = f"c/{i:02d}.png"
        (tmp_path / "c").mkdir(exist_ok=True)
        Image.fromarray(img).save(tmp_path / path)
        paths.append(path)
    return paths


class _PixelEncoder:
    """Stands in for a model: the 8x8 thumbnail as a unit vector."""

    def embed(self, images):
        out = []
        for p in images:
            thumb = np.asarray(Image.fromarray((p * 255).astype(np.uint8)).resize((8, 8)), np.float32)
            v = thumb.ravel() - thumb.mean()
            out.append(v / (np.linalg.norm(v) + 1e-9))
        return np.array(out, np.float32)


def test_copies_keep_the_aspect_and_cover_every_kind(tmp_path):
    pixels = np.random.default_rng(0).uniform(size=(40, 60)).astype(np.float32)
    copies = make_copies(pixels, np.random.default_rng(0))
    assert len(copies) == len(EDIT_KINDS)
    assert all(c.dtype == np.float32 and c.shape[0] <= 40 and c.shape[1] <= 60 for c in copies)
    same_size = [c.shape == (40, 60) for k, c in zip(EDIT_KINDS, copies, strict=True)
                 if k in ("rotate", "gamma", "jpeg", "text", "noise")]
    assert all(same_size) and len(same_size) == 5


def test_synthetic_set_and_auto_calibration(tmp_path):
    paths = _blobs(tmp_path)
    hashes = hash_files(tmp_path, paths)
    encoder = _PixelEncoder()
    vectors = encoder.embed([np.asarray(Image.open(tmp_path / p), np.float32) / 255 for p in paths])
    heldout = singletons(hashes, range(4))
    known = build_synthetic_set(encoder, tmp_path, paths, vectors, hashes, heldout, neg_k=3,
                                bystanders=range(4, 12))
    assert known.pos_score.shape == (len(heldout) * len(EDIT_KINDS),)
    assert known.pos_kind[: len(EDIT_KINDS)] == list(EDIT_KINDS)
    n_queries = len(heldout) + 8 + known.pos_score.size
    assert n_queries * 3 <= known.neg_score.size <= n_queries * 6  # 3 by cosine + 3 by hash, deduplicated
    jpeg = np.array(known.pos_kind) == "jpeg"
    assert known.pos_hash[jpeg].max() <= 4  # a re-encode barely moves the pHash
    cal = calibrate_known(known, target=0.9)
    assert set(cal.recall_by_kind) == set(EDIT_KINDS)
    assert cal.rule.recall >= max(cal.embedding.recall, cal.hash.recall) - 1e-9
    assert cal.to_dict()["n_positive"] == known.pos_score.size


def test_verdicts_without_rejections_do_not_raise_the_threshold():
    cal = calibrate_from_verdicts(np.array([1.0, 1.0, 0.998]), np.array([True, True, True]),
                                  threshold=0.99)
    assert cal.precision == 1.0 and cal.suggested.threshold == 0.99


def test_cosine_floor_vetoes_hash_collisions():
    """Look-alike images collide on pHash; the embedding tells them apart, so a floor is chosen."""
    rng = np.random.default_rng(2)
    pos_score, pos_hash = rng.uniform(0.82, 0.95, 100), rng.integers(0, 3, 100)
    neg_score = np.r_[rng.uniform(0.3, 0.8, 300), rng.uniform(0.85, 0.97, 300)]  # collisions, look-alikes
    neg_hash = np.r_[rng.integers(0, 3, 300), rng.integers(20, 40, 300)]
    choice = calibrate_rule(pos_score, pos_hash, neg_score, neg_hash, target=0.99)
    assert choice.recall == 1.0 and choice.precision == 1.0
    assert 0.8 < choice.rule.hash_floor <= pos_score.min() and choice.rule.hash_threshold >= 2
    assert not threshold_for_precision(pos_score, neg_score, 0.99).reached
    assert not hash_threshold_for_precision(pos_hash, neg_hash, 0.99).reached
