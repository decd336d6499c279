"""Image statistics are measured once, kept in the run folder, and read again without the films."""

from __future__ import annotations

import os

import numpy as np
import pytest

from core.quality import stats as stats_module
from core.quality.stats import STATS_FILE, read_stats, run_stats
from tests.quality._runs import Film, chest, make_run


@pytest.fixture
def run(tmp_path):
    films = [Film(f"f{i}.png", chest(i), "x", (1.0, i)) for i in range(3)]
    return make_run(tmp_path, films), tmp_path / "data", [f.name for f in films]


def _forbid_reading(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a film was read again")
    monkeypatch.setattr(stats_module, "measure_film", refuse)


def test_measured_once_then_read_from_the_run_folder(run, monkeypatch):
    run_dir, data, paths = run
    assert run_stats(run_dir, data, paths).n_missing == 3  # nothing measured, nothing written
    assert not (run_dir / STATS_FILE).exists()
    seen = []
    first = run_stats(run_dir, data, paths, measure=True, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 3), (2, 3), (3, 3)] and first.n_missing == 0
    _forbid_reading(monkeypatch)
    again = run_stats(run_dir, data, paths)  # what a page does: no film read
    assert again.n_missing == 0
    for a, b in zip(first.films, again.films, strict=True):
        assert (a.hist == b.hist).all() and a.laplacian == b.laplacian and a.colour == b.colour
    assert sorted(read_stats(run_dir / STATS_FILE)) == paths
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]  # written atomically


def test_a_changed_film_is_measured_again_alone(run, monkeypatch):
    run_dir, data, paths = run
    run_stats(run_dir, data, paths, measure=True)
    st = (data / "f1.png").stat()
    os.utime(data / "f1.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert [s is None for s in run_stats(run_dir, data, paths).films] == [False, True, False]
    measured = []
    real = stats_module.measure_film
    monkeypatch.setattr(stats_module, "measure_film", lambda p, n: measured.append(n) or real(p, n))
    run_stats(run_dir, data, paths, measure=True)
    assert measured == ["f1.png"]


def test_films_outside_the_dataset_or_missing_are_named_not_read(run, monkeypatch, tmp_path):
    run_dir, data, paths = run
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes((data / "f0.png").read_bytes())
    _forbid_reading(monkeypatch)
    got = run_stats(run_dir, data, [str(outside), "../elsewhere.png", "gone.png"], measure=True)
    problems = [s.problem for s in got.films]
    assert "outside the dataset folder" in problems[0] and "outside the dataset folder" in problems[1]
    assert problems[2].startswith("gone.png: cannot open file")
    assert got.unreadable(["o", "p", "g"])[2][0] == "g"


def test_an_unreadable_film_is_kept_with_its_reason(run):
    run_dir, data, paths = run
    (data / "broken.png").write_bytes(b"not a png")
    got = run_stats(run_dir, data, [*paths, "broken.png"], measure=True)
    assert got.films[3].hist is None and got.films[3].problem.startswith("broken.png")
    assert read_stats(run_dir / STATS_FILE)["broken.png"][1].problem == got.films[3].problem


def test_a_damaged_stats_file_means_measure_again(run):
    run_dir, data, paths = run
    (run_dir / STATS_FILE).write_bytes(b"garbage")
    assert read_stats(run_dir / STATS_FILE) == {}
    assert run_stats(run_dir, data, paths).n_missing == 3
    assert run_stats(run_dir, data, paths, measure=True).n_missing == 0
    assert np.load(run_dir / STATS_FILE)["hist"].shape == (3, 256)
