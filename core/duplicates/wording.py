"""Duplicate rules in words, as the Duplicates page and reports show them."""

from __future__ import annotations

from typing import Any

from core.duplicates.rule import Rule


def rule_sentence(rule: Rule, method: str) -> str:
    """'Rule (auto): a pair is a duplicate when ...' in one sentence, estimates' basis included."""
    floor = f" and its cosine is at least {rule.hash_floor:.4f}" if rule.hash_floor > -1 else ""
    return (f"Rule ({method}): a pair is a duplicate when its cosine is at least {rule.threshold:.4f}, "
            f"or its pHash distance is at most {rule.hash_threshold}{floor}; identical pixels always. "
            "Estimates are on synthetic copies of held-out images against their nearest non-duplicates.")


def detector_text(name: str, calibration: dict[str, Any]) -> str:
    """One detector of an auto calibration ('embedding', 'hash' or 'combined') as a rule."""
    if name == "embedding":
        return f"cosine ≥ {calibration['threshold']:.4f}"
    if name == "hash":
        return f"pHash ≤ {int(calibration['threshold'])}"
    r = calibration["rule"]
    floor = f" and cosine ≥ {r['hash_floor']:.4f}" if r.get("hash_floor", -1) > -1 else ""
    return f"cosine ≥ {r['threshold']:.4f} or (pHash ≤ {r['hash_threshold']}{floor})"
