"""Calibration of the near-duplicate rules: synthetic copies (edits, known pairs), the `auto`
thresholds, the verification rule, and thresholds from reviewers' verdicts."""
