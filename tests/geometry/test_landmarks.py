"""Shared landmarks: a patient's other film shares many, another patient's few; bad files share none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data.imageio import load_image
from core.demo.anatomy import sample_anatomy
from core.demo.dataset import CLASSES
from core.demo.phantom import render_phantom, sample_acquisition
from core.geometry.landmarks import NO_LANDMARKS, LandmarkVerifier, landmarks_of, shared_landmarks

REAL = Path("/work/shared/data/cxr")


def visit(patient: int, visit_seed: int, label: int = 0, size: int = 256) -> np.ndarray:
    """A synthetic film: the patient's anatomy, a new acquisition (exposure, position, noise)."""
    rng = np.random.default_rng(visit_seed)
    img = render_phantom(CLASSES[label], sample_anatomy(np.random.default_rng(patient)),
                         sample_acquisition(rng), size, rng)
    return np.asarray(img)


def test_a_patients_follow_up_shares_more_landmarks_than_other_patients():
    first = landmarks_of(visit(1, 100))
    follow_up = shared_landmarks(first, landmarks_of(visit(1, 101, label=1)))  # another visit, sicker
    others = [shared_landmarks(first, landmarks_of(visit(p, 100 + p))) for p in (2, 3, 4)]
    assert follow_up > 2 * max(others)
    # shifted and magnified at another visit: one similarity transform still relates them
    moved = np.asarray(Image.fromarray(visit(1, 102)).resize((300, 300)).crop((30, 20, 286, 276)))
    assert shared_landmarks(first, landmarks_of(moved)) > 2 * max(others)


def test_blank_films_have_no_landmarks_and_share_none():
    blank = landmarks_of(np.zeros((64, 64), np.uint8))
    assert len(blank.points) == 0
    assert shared_landmarks(blank, landmarks_of(visit(1, 100))) == 0
    assert shared_landmarks(NO_LANDMARKS, NO_LANDMARKS) == 0


def test_verifier_counts_per_candidate_and_an_unreadable_film_shares_none(tmp_path):
    files = []
    for i, (patient, seed) in enumerate([(1, 100), (1, 101), (2, 102), (3, 103)]):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(visit(patient, seed)).save(files[-1])
    (tmp_path / "bad.png").write_bytes(b"not an image")
    files.append(tmp_path / "bad.png")
    verifier = LandmarkVerifier(files, workers=1)
    counts = verifier(np.array([0, 2]), np.array([[2, 1, 4], [0, 3, 4]]))
    assert counts.shape == (2, 3)
    assert counts[0, 1] > 2 * counts[0, 0]  # row 1 (same patient) beats row 2
    assert counts[0, 2] == counts[1, 2] == 0 and 4 in verifier.unreadable
    assert "bad.png" in verifier.unreadable[4]  # the message names the file


@pytest.mark.skipif(not (REAL / "manifest.csv").is_file(), reason="needs ../shared/data/cxr")
def test_real_films_of_one_child_share_more_landmarks_than_other_childrens():
    def marks(rel: str):
        return landmarks_of(load_image(REAL / rel).pixels)

    first = marks("Bacterial_Pneumonia/kermany_person101_bacteria_483.png")
    same = shared_landmarks(first, marks("Bacterial_Pneumonia/kermany_person101_bacteria_484.png"))
    others = [shared_landmarks(first, marks(p)) for p in (
        "Bacterial_Pneumonia/kermany_person103_bacteria_488.png",
        "Bacterial_Pneumonia/kermany_person104_bacteria_491.png",
        "Bacterial_Pneumonia/kermany_person109_bacteria_512.png")]
    assert same > 2 * max(others)
