"""How a run stands against the baselines its evaluation measured, and why, in its own numbers.

A model that retrieves less well than raw pixels needs a reason on screen, not a promise.
The reason comes from the evaluation itself: the `random_init_<arch>` baseline is the run's
own encoder before training, so a run that scores no better than it learned nothing that
retrieval measures, and one that scores better learned something, not yet enough.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.retrieval.evaluate import Evaluation

METRIC_WORDS = {"precision_at_1": "P@1", "precision_at_5": "P@5", "precision_at_10": "P@10",
                "map": "mAP", "map_at_r": "mAP@R"}


def baseline_words(key: str) -> str:
    """A baseline's key in words: pixels_32 -> 'raw pixels (32 px)', random_init_resnet18 ->
    'random-init resnet18', imagenet_resnet18 -> 'ImageNet resnet18'."""
    if key.startswith("pixels_"):
        return f"raw pixels ({key.split('_')[1]} px)"
    for prefix, words in (("random_init_", "random-init"), ("imagenet_", "ImageNet")):
        if key.startswith(prefix):
            return f"{words} {key.removeprefix(prefix)}"
    return key


@dataclass(frozen=True)
class BaselineGap:
    """A run below at least one baseline on `metric`.

    best: the key of the highest-scoring baseline; untrained: the score of the run's own
    encoder with random weights (None when the evaluation did not measure it).
    """

    metric: str
    score: float
    best: str
    best_score: float
    untrained: float | None
    n_queries: int

    def describe(self, epochs: int, n_train: int) -> str:
        """Two short sentences: where the run stands, and why (from the numbers above).

        Args:
            epochs: epochs the run trained; n_train: its training images.
        """
        m = METRIC_WORDS.get(self.metric, self.metric)
        where = (f"Below {baseline_words(self.best)} on {m} ({self.score:.3f} vs {self.best_score:.3f}, "
                 f"{self.n_queries} test queries).")
        budget = f"{epochs} epochs on {n_train} training images"
        if self.untrained is None:
            return f"{where} It trained {budget}."
        if self.score <= self.untrained:
            return (f"{where} Why: it scores no better than the same encoder with random weights "
                    f"({self.untrained:.3f}): {budget} taught it nothing retrieval measures yet.")
        return (f"{where} Why: {budget} lifted it above the same encoder with random weights "
                f"({self.untrained:.3f}), not yet past the baseline.")


def baseline_gap(evaluation: Evaluation, metric: str = "precision_at_5") -> BaselineGap | None:
    """The gap to the best baseline when one scores higher than the run on `metric`, else None
    (also None when the evaluation measured no baselines)."""
    if not evaluation.baselines or not evaluation.scores.measured:
        return None
    own = getattr(evaluation.scores, metric)
    best, top = max(((k, getattr(v, metric)) for k, v in evaluation.baselines.items()),
                    key=lambda kv: kv[1])
    if top <= own:
        return None
    untrained = next((getattr(v, metric) for k, v in evaluation.baselines.items()
                      if k.startswith("random_init_")), None)
    return BaselineGap(metric, own, best, top, untrained, evaluation.scores.n_queries)
