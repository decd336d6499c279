"""The "same patient?" prior calibrated on a run's held-out images, and hiding a patient's films."""

import numpy as np
import pytest

from core.embed.embeddings import Embeddings
from core.retrieval.patients import calibrate_same_patient, without_patient
from core.retrieval.search import Hit


def _unit(angles_deg):
    a = np.radians(np.asarray(angles_deg, dtype=np.float64))
    return np.stack([np.cos(a), np.sin(a)], axis=1).astype(np.float32)


def _embeddings(angles, patients, splits):
    n = len(angles)
    return Embeddings([f"f{i}.png" for i in range(n)], ["x"] * n, list(splits), list(patients),
                      _unit(angles))


def test_close_films_of_one_patient_get_a_confident_hint():
    # 30 patients with two films 1 degree apart, patients 10 degrees from each other:
    # the nearest neighbour (cosine ~0.9998) is always the patient's other film, the next
    # ones (cosine <= cos 9 deg = 0.9877) never are.
    angles, patients = [], []
    for p in range(30):
        angles += [p * 10.0, p * 10.0 + 1.0]
        patients += [f"P{p}", f"P{p}"]
    prior = calibrate_same_patient(_embeddings(angles, patients, ["test"] * 60), k=3, min_pairs=20)
    assert prior.n_same == 60 and prior.n_pairs == 180
    assert prior.threshold is not None and 0.988 < prior.threshold < 1.0
    assert prior.confidence(0.9999) == pytest.approx(1.0)
    assert prior.confidence(0.97) == pytest.approx(0.0)
    assert prior.hint(0.9999) is not None and prior.hint(0.97) is None


def test_no_hint_without_enough_same_patient_pairs():
    prior = calibrate_same_patient(_embeddings([0, 1, 50, 51], ["A", "A", "B", "B"], ["test"] * 4),
                                   k=1, min_pairs=20)
    assert prior.n_same == 4 and prior.threshold is None and prior.hint(1.0) is None
    lone = calibrate_same_patient(_embeddings([0, 1], ["", ""], ["test"] * 2))
    assert lone.n_pairs == 0 and lone.confidence(1.0) == 0.0 and lone.hint(1.0) is None


def test_calibration_uses_held_out_queries_only():
    # the training images' pairs (angles 0/1) would say "same patient"; only val/test count
    emb = _embeddings([0, 1, 40, 41, 90], ["A", "A", "B", "C", "D"], ["train", "train", "test", "test", "val"])
    prior = calibrate_same_patient(emb, k=1, min_pairs=1)
    assert prior.n_pairs == 3 and prior.n_same == 0  # queries 2, 3, 4: none finds its patient


def test_without_patient_hides_and_reranks():
    hits = [Hit(1, "a", "x", 0.9, patient_id="P"), Hit(2, "b", "x", 0.8, patient_id="Q"),
            Hit(3, "c", "x", 0.7, patient_id="P"), Hit(4, "d", "x", 0.6)]
    kept = without_patient(hits, "P")
    assert [(h.rank, h.path) for h in kept] == [(1, "b"), (2, "d")]
    assert without_patient(hits, None) == hits and without_patient(hits, "") == hits


def test_searcher_hits_carry_patients_and_hide_one(tiny_workspace):
    from core.retrieval.search import Searcher

    searcher = Searcher(tiny_workspace.run_dir)
    e = searcher.embeddings
    counts = {p: e.patients.count(p) for p in e.patients if p}
    query = next(i for i, p in enumerate(e.patients) if p and counts[p] > 1)  # a follow-up's patient
    hits = searcher.search_vector(e.vectors[query], k=5)
    assert all(h.patient_id == e.patients[h.index] for h in hits)
    assert hits[0].index == query  # the image itself first
    hidden = searcher.search_vector(e.vectors[query], k=5, hide_patient=e.patients[query])
    assert len(hidden) == 5 and [h.rank for h in hidden] == [1, 2, 3, 4, 5]
    assert all(h.patient_id != e.patients[query] for h in hidden)
    prior = searcher.same_patient_prior
    assert 0.0 <= prior.confidence(hits[1].score) <= 1.0
