"""Same-patient metrics and the patient-excluding protocol, against hand-computed values."""

import numpy as np
import pytest

from core.retrieval.metrics import evaluate_retrieval
from core.retrieval.patient_metrics import (
    recall_at_k,
    reranked_same_patient,
    same_patient_retrieval,
)


def _unit(angles_deg):
    a = np.radians(np.asarray(angles_deg, dtype=np.float64))
    return np.stack([np.cos(a), np.sin(a)], axis=1).astype(np.float32)  # (N, 2) unit rows


def test_recall_at_k_by_hand():
    rel = np.array([0, 1, 0, 0, 1, 0, 1], dtype=bool)  # 3 relevant, 2 in the top 5
    assert recall_at_k(rel, 5) == pytest.approx(2 / 3)
    assert recall_at_k(rel, 1) == 0.0
    assert recall_at_k(rel, 7) == 1.0
    assert recall_at_k(np.zeros(4, bool), 2) == 0.0
    with pytest.raises(ValueError):
        recall_at_k(rel, 0)


def test_exclusion_drops_the_query_patients_films():
    # Query 0 (patient A, label x). Its nearest image is 1, the same patient and label;
    # then 2 (other patient, label y), then 3 (other patient, label x).
    vectors = _unit([0, 5, 20, 40])
    labels = ["x", "x", "y", "x"]
    patients = ["A", "A", "B", "C"]
    q, g = np.array([0]), np.arange(4)
    with_patient = evaluate_retrieval(vectors, labels, q, g)
    assert with_patient.precision_at_1 == 1.0  # the patient's own film counts as a hit
    assert with_patient.map == pytest.approx((1 / 1 + 2 / 3) / 2)
    honest = evaluate_retrieval(vectors, labels, q, g, patients=patients)
    # ranking without patient A: 2 (y), 3 (x) -> P@1 0, AP = 1/2, MAP@R (R=1) = 0
    assert honest.precision_at_1 == 0.0
    assert honest.map == pytest.approx(0.5)
    assert honest.map_at_r == 0.0


def test_exclusion_skips_a_query_whose_only_match_is_its_patient():
    vectors = _unit([0, 5, 90, 95])
    labels = ["x", "x", "y", "y"]
    honest = evaluate_retrieval(vectors, labels, np.array([0, 2]), np.arange(4),
                                patients=["A", "A", "", "B"])
    # query 0: its only same-label film is its own patient's -> skipped; query 2 finds 3 first
    assert honest.n_queries == 1
    assert honest.precision_at_1 == 1.0


def test_unknown_patient_ids_exclude_only_the_query_itself():
    vectors = _unit([0, 5, 40])
    labels = ["x", "x", "x"]
    honest = evaluate_retrieval(vectors, labels, np.array([0]), np.arange(3), patients=["", "", "B"])
    assert honest.precision_at_1 == 1.0  # image 1 has no id: kept


def test_same_patient_metrics_by_hand():
    # patients: A has 0, 2, 4; B has 1, 3; C has 5 alone; 6 unknown.
    vectors = _unit([0, 10, 22, 30, 60, 90, 15])
    patients = ["A", "B", "A", "B", "A", "C", ""]
    q = np.array([0, 1, 5, 6])  # 5 (alone) and 6 (unknown) are skipped
    s = same_patient_retrieval(vectors, patients, q, np.arange(7))
    # query 0 at 0 deg: ranking 1(10) 6(15) 2(22) 3(30) 4(60) 5(90); relevant 2 and 4
    #   P@1 0; AP = (1/3 + 2/5) / 2; recall@5 = 2/2
    # query 1 at 10 deg: ranking 6(5) 0(10) 2(12) 3(20) 4(50) 5(80); relevant 3
    #   P@1 0; AP = 1/4; recall@5 = 1
    assert s.n_queries == 2
    assert s.precision_at_1 == 0.0
    assert s.map == pytest.approx(((1 / 3 + 2 / 5) / 2 + 1 / 4) / 2)
    assert s.recall_at_5 == pytest.approx(1.0)


def test_same_patient_top1_and_partial_recall():
    vectors = _unit([0, 1, 50, 60, 70, 80, 89, 120])
    patients = ["A", "A", "X", "Y", "Z", "W", "V", "A"]
    s = same_patient_retrieval(vectors, patients, np.array([0]), np.arange(8))
    # ranking: 1 (A), 2, 3, 4, 5, 6, 7 (A) -> P@1 1, AP = (1 + 2/7)/2, recall@5 = 1/2
    assert s.precision_at_1 == 1.0
    assert s.map == pytest.approx((1 + 2 / 7) / 2)
    assert s.recall_at_5 == pytest.approx(0.5)


def test_same_patient_without_partners_is_empty():
    s = same_patient_retrieval(_unit([0, 10]), ["A", "B"], np.array([0, 1]), np.arange(2))
    assert s.n_queries == 0 and s.precision_at_1 == 0.0
    assert s.to_dict() == {"precision_at_1": None, "map": None, "recall_at_5": None, "n_queries": 0}


def test_reranking_by_evidence_by_hand():
    # the by-hand gallery above; query 0's cosine ranking is 1 6 2 3 4 5 (relevant 2 and 4)
    vectors = _unit([0, 10, 22, 30, 60, 90, 15])
    patients = ["A", "B", "A", "B", "A", "C", ""]
    calls = []

    def shared(queries, candidates):  # row 4 shares 10 landmarks with query 0, nothing else does
        calls.append((queries.tolist(), candidates.tolist()))
        return np.where((queries[:, None] == 0) & (candidates == 4), 10, 0)

    s = reranked_same_patient(vectors, patients, np.array([0, 1, 5, 6]), np.arange(7), shared, depth=5)
    # query 0: top 5 (1 6 2 3 4) -> 4 1 6 2 3, then 5: relevant at 1 and 4 -> P@1 1, AP (1 + 2/4)/2
    # query 1: nothing moves: 6 0 2 3 4 5, relevant 3 at 4 -> AP 1/4
    assert calls == [([0, 1], [[1, 6, 2, 3, 4], [6, 0, 2, 3, 4]])]
    assert s.n_queries == 2
    assert s.precision_at_1 == pytest.approx(0.5)
    assert s.map == pytest.approx(((1 + 2 / 4) / 2 + 1 / 4) / 2)
    assert s.recall_at_5 == pytest.approx(1.0)
    # depth 3 cannot reach row 4 (5th): the cosine ranking stands
    shallow = reranked_same_patient(vectors, patients, np.array([0, 1]), np.arange(7), shared, depth=3)
    assert shallow == same_patient_retrieval(vectors, patients, np.array([0, 1]), np.arange(7))


def test_reranking_ties_keep_the_cosine_order_and_queries_can_be_sampled():
    vectors = _unit([0, 10, 22, 30, 60, 90, 15])
    patients = ["A", "B", "A", "B", "A", "C", ""]
    q = np.array([0, 1])
    flat = reranked_same_patient(vectors, patients, q, np.arange(7),
                                 lambda qs, c: np.ones(c.shape), depth=6)
    assert flat == same_patient_retrieval(vectors, patients, q, np.arange(7))
    one = reranked_same_patient(vectors, patients, q, np.arange(7),
                                lambda qs, c: np.zeros(c.shape), depth=6, max_queries=1)
    assert one.n_queries == 1 and one.map == pytest.approx((1 / 3 + 2 / 5) / 2)  # query 0 alone
    none = reranked_same_patient(vectors, ["A", "B", "", "C", "D", "E", "F"], q, np.arange(7),
                                 lambda qs, c: np.zeros(c.shape), depth=6)
    assert none.n_queries == 0
    with pytest.raises(ValueError):
        reranked_same_patient(vectors, patients, q, np.arange(7), lambda qs, c: c, depth=0)


def test_evaluation_block_adds_the_reranked_scores_beside_the_embeddings():
    from core.retrieval.evaluate import _score

    class Evidence:
        depth, method = 5, "row 4 is query 0's patient"

        def __call__(self, queries, candidates):
            return np.where((queries[:, None] == 0) & (candidates == 4), 10, 0)

    vectors = _unit([0, 10, 22, 30, 60, 90, 15])
    labels = ["x", "y", "x", "y", "x", "z", "x"]
    patients = ["A", "B", "A", "B", "A", "C", ""]
    q = np.array([0, 1, 5, 6])
    _, plain = _score(vectors, labels, q, patients, True, None)
    assert "verified" not in plain and plain["precision_at_1"] == 0.0
    _, block = _score(vectors, labels, q, patients, True, Evidence())
    assert {k: block[k] for k in plain} == plain  # the embedding's own figures are unchanged
    assert block["verified"] == {"precision_at_1": 0.5, "map": pytest.approx(((1 + 2 / 4) / 2 + 1 / 4) / 2),
                                 "recall_at_5": 1.0, "n_queries": 2, "n_eligible": 2, "depth": 5,
                                 "method": "row 4 is query 0's patient"}
    _, nobody = _score(vectors, labels, q, ["A", "B", "C", "D", "E", "F", "G"], True, Evidence())
    assert "verified" not in nobody  # no query has a partner film: nothing to re-rank
