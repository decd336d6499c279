"""A run against its baselines: the gap to the best one, and why, from the evaluation's numbers."""

import pytest

from core.retrieval.evaluate import Evaluation
from core.retrieval.metrics import RetrievalScores
from core.retrieval.standing import baseline_gap, baseline_words


def _scores(p5: float, n: int = 26) -> RetrievalScores:
    return RetrievalScores(0.5, p5, 0.5, 0.3, 0.1, n, 264)


def _evaluation(run: float, **baselines: float) -> Evaluation:
    return Evaluation(_scores(run), "protocol", "data", {k: _scores(v) for k, v in baselines.items()})


def test_no_gap_when_the_run_leads_or_ties_or_nothing_was_compared():
    assert baseline_gap(_evaluation(0.5, pixels_32=0.49, random_init_resnet18=0.3)) is None
    assert baseline_gap(_evaluation(0.5, pixels_32=0.5)) is None  # a tie is not "below"
    assert baseline_gap(Evaluation(_scores(0.1), "p", "d", None)) is None
    assert baseline_gap(Evaluation(_scores(0.1), "p", "d", {})) is None


def test_a_run_no_better_than_its_untrained_encoder_says_so():
    # the demo preset on the demo set (measured): P@5 0.400, raw pixels 0.492, random init 0.400
    gap = baseline_gap(_evaluation(0.4, pixels_32=0.492, random_init_resnet18=0.4))
    assert (gap.best, gap.best_score, gap.untrained, gap.n_queries) == ("pixels_32", 0.492, 0.4, 26)
    assert gap.describe(8, 212) == (
        "Below raw pixels (32 px) on P@5 (0.400 vs 0.492, 26 test queries). Why: it scores no "
        "better than the same encoder with random weights (0.400): 8 epochs on 212 training "
        "images taught it nothing retrieval measures yet.")


def test_a_run_that_learned_but_not_enough_and_the_best_baseline_is_named():
    gap = baseline_gap(_evaluation(0.45, pixels_32=0.5, random_init_resnet18=0.3, imagenet_resnet18=0.6))
    assert gap.best == "imagenet_resnet18" and gap.best_score == pytest.approx(0.6)
    assert gap.describe(20, 800) == (
        "Below ImageNet resnet18 on P@5 (0.450 vs 0.600, 26 test queries). Why: 20 epochs on 800 "
        "training images lifted it above the same encoder with random weights (0.300), not yet "
        "past the baseline.")


def test_without_a_random_weights_baseline_only_the_budget_is_given():
    gap = baseline_gap(_evaluation(0.2, pixels_32=0.3))
    assert gap.untrained is None
    assert gap.describe(2, 10).endswith("It trained 2 epochs on 10 training images.")


def test_other_metrics_and_words():
    gap = baseline_gap(_evaluation(0.5, pixels_32=0.1), metric="map_at_r")  # all 0.1: a tie
    assert gap is None
    assert baseline_words("pixels_64") == "raw pixels (64 px)"
    assert baseline_words("random_init_resnet50") == "random-init resnet50"
    assert baseline_words("something_else") == "something_else"
