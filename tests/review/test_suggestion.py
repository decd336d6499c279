"""The verdicts' suggested threshold (enough verdicts of each kind, an interval) and queue order."""

from __future__ import annotations

import numpy as np
import pytest

from core.duplicates.candidates import CandidatePair
from core.review.queue import (
    QueueFilter,
    review_queue,
    suggest_threshold,
    verdict_check,
    verdict_scores,
)
from core.review.store import Verdict, pair_key


def _pair(n: int, score: float, hash_distance: int = 30, exact: bool = False) -> CandidatePair:
    return CandidatePair(f"a{n:02d}.png", f"b{n:02d}.png", n, n + 100, score, hash_distance, exact,
                         False, False, True)


def _verdicts(pairs, duplicate) -> dict:
    return {pair_key(p.a, p.b): Verdict(i, "d", p.a, p.b, "duplicate" if d else "not_duplicate", "", "",
                                        "r", 0.0, "run", None, str(i))
            for i, (p, d) in enumerate(zip(pairs, duplicate, strict=True))}


def test_no_suggestion_before_ten_verdicts_of_each_kind():
    pairs = [_pair(i, 0.99 + i / 1000) for i in range(8)] + [_pair(10 + i, 0.90 + i / 100) for i in range(13)]
    current = _verdicts(pairs, [True] * 8 + [False] * 13)  # 21 verdicts, 8 duplicates
    check = verdict_check(pairs, current, 0.95)
    assert check.suggested is not None  # the old rule suggested from any verdicts
    s = suggest_threshold(check, *verdict_scores(pairs, current))
    assert s.choice is None and s.low is None
    assert "at least 10 verdicts of each kind: 8 duplicate and 13 not-duplicate" in s.missing


def test_suggestion_comes_with_an_interval_around_it():
    rng = np.random.default_rng(1)
    dup = [_pair(i, float(s)) for i, s in enumerate(rng.uniform(0.97, 1.0, 15))]
    not_dup = [_pair(50 + i, float(s)) for i, s in enumerate(rng.uniform(0.90, 0.975, 15))]
    pairs = dup + not_dup
    current = _verdicts(pairs, [True] * 15 + [False] * 15)
    check = verdict_check(pairs, current, 0.95)
    s = suggest_threshold(check, *verdict_scores(pairs, current))
    assert s.missing == "" and s.choice == check.suggested
    assert s.low <= s.choice.threshold <= s.high and s.high - s.low < 0.05
    assert suggest_threshold(check, *verdict_scores(pairs, current)) == s  # seeded: reproducible


def test_queue_orders_by_score_kind_and_group():
    p1, p2, p3 = _pair(1, 0.95, 10), _pair(2, 0.99, 4), _pair(3, 0.97, 0, exact=True)
    def order(sort, **kw):
        return [q.pair.a for q in review_queue([p1, p2, p3], {}, QueueFilter(sort=sort), **kw)]
    assert order("score") == ["a02.png", "a03.png", "a01.png"]
    assert order("score_low") == ["a01.png", "a03.png", "a02.png"]
    assert order("kind") == ["a03.png", "a02.png", "a01.png"]  # identical pixels, then pHash 4, 10
    groups = [["a01.png", "b01.png"], ["a03.png", "b03.png"]]
    assert order("group", groups=groups) == ["a01.png", "a03.png", "a02.png"]  # group 1, 2, none
    with pytest.raises(ValueError, match="unknown sort"):
        order("size")
