"""A run's five lists on hand-made films whose problems are known (tests/quality/_runs.py)."""

from __future__ import annotations

from core.quality import run_quality
from tests.quality._runs import make_run, standard_films

PLAIN = {"a/a0.png", "a/a1.png", "a/a2.png", "a/a3.png", "a/a4.png", "b/b4.png"}


def _paths(quality, name):
    return [f.path for f in quality.get(name).findings]


def test_each_list_finds_its_film_and_no_plain_one(tmp_path):
    run = make_run(tmp_path, standard_films())
    before = run_quality(run)  # a page: image lists wait until the films are measured
    assert before.n_unmeasured == 13
    assert all(before.get(n).pending for n in ("exposure", "blur", "content"))
    assert _paths(before, "outliers") == ["a/far.png"]
    q = run_quality(run, measure=True, limit=None)
    assert q.n_unmeasured == 0 and q.n_films == 13 and not q.unreadable
    assert _paths(q, "outliers") == ["a/far.png"]
    assert _paths(q, "label_errors")[0] == "a/odd.png"
    assert _paths(q, "exposure") == ["b/dark.png", "b/bright.png"]
    assert _paths(q, "blur") == ["a/soft.png"]
    assert _paths(q, "content") == ["b/blank.png", "b/colour.png"]
    listed = {f.path for x in q.lists if x.name != "label_errors" for f in x.findings}
    assert not listed & PLAIN


def test_a_run_without_labels_skips_the_label_list_with_its_reason(tmp_path):
    run = make_run(tmp_path, standard_films(labelled=False))
    q = run_quality(run, measure=True)
    assert q.get("label_errors").skipped == "The run has no labels, so there is no label to disagree with."
    assert _paths(q, "outliers") == ["a/far.png"] and _paths(q, "blur") == ["a/soft.png"]


def test_limit_keeps_the_worst(tmp_path):
    q = run_quality(make_run(tmp_path, standard_films()), measure=True, limit=1)
    assert _paths(q, "content") == ["b/blank.png"]
