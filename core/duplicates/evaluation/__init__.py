"""Evaluation of the near-duplicate detectors: the report on synthetic and listed pairs, and
the scores of each pair for the verified detector."""
