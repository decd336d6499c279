"""The one process pool: results in order, a worker's error reaches the caller."""

from __future__ import annotations

import pytest

from core.geometry.workers import spawn_map


def test_results_come_back_in_the_order_of_the_jobs():
    assert spawn_map(abs, range(-20, 0), 2, chunksize=3) == list(range(20, 0, -1))


def test_an_error_in_a_worker_is_raised_here():
    with pytest.raises(ValueError, match="invalid literal"):
        spawn_map(int, ["1", "2", "three"], 2)
