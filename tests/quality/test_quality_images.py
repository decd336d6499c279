"""Image figures by hand: grey histogram, exposure, variance of the Laplacian, content."""

from __future__ import annotations

import numpy as np

from core.quality.blur import find_blur, laplacian_variance
from core.quality.content import content_problem, find_content, grey_spread
from core.quality.exposure import exposure_problem, find_exposure
from core.quality.histogram import (
    grey_histogram,
    histogram_mean,
    histogram_percentile,
    share_above,
    share_below,
)
from core.quality.stats import measure_pixels


def _hist(levels: dict[int, int]) -> np.ndarray:
    h = np.zeros(256, np.int64)
    for level, count in levels.items():
        h[level] = count
    return h


def test_histogram_and_its_figures_by_hand():
    h = grey_histogram(np.array([[0, 0], [255, 128]], np.uint8))
    assert h.sum() == 4 and (h[0], h[128], h[255]) == (2, 1, 1)
    assert histogram_mean(h) == (128 / 255 + 1) / 4  # 0.3755
    half = _hist({0: 50, 255: 50})
    assert histogram_percentile(half, 1) == 0.0 and histogram_percentile(half, 99) == 1.0
    assert histogram_percentile(half, 50) == 0.0  # the 50th pixel is still black
    # below 0.1 means levels 0..25 (25.5 rounded up to the cut 26)
    assert share_below(_hist({25: 1, 26: 3}), 0.1) == 0.25
    assert share_above(_hist({229: 3, 230: 1}), 0.9) == 0.25  # above 229.5: 230 and up
    assert histogram_mean(np.zeros(256)) == 0.0


def test_exposure_limits_and_order():
    assert exposure_problem(_hist({25: 10})) == ("too dark", 25 / 255)  # 0.098 < 0.2
    assert exposure_problem(_hist({230: 10})) == ("too bright", 230 / 255)  # 0.902 > 0.8
    assert exposure_problem(_hist({128: 10})) is None
    hists = [_hist({128: 4}), _hist({40: 4}), _hist({10: 4}), _hist({250: 4}), None]
    out = find_exposure(["mid", "dim", "black", "white", "unread"], ["x"] * 5, hists)
    # past the limit: black 0.2 - 0.039 = 0.161, white 0.980 - 0.8 = 0.180, dim 0.2 - 0.157 = 0.043
    assert [f.path for f in out.findings] == ["white", "black", "dim"]
    assert out.findings[1].reason == "too dark: mean grey 0.04; 100% of pixels in the darkest tenth"
    assert out.findings[0].score == round(250 / 255, 4)


def test_laplacian_variance_of_one_bright_pixel_by_hand():
    img = np.zeros((5, 5), np.uint8)
    img[2, 2] = 255
    # kernel [[0,1,0],[1,-4,1],[0,1,0]]: -1020 at the centre, +255 at its four neighbours,
    # 0 elsewhere; mean 0, variance (1020^2 + 4 * 255^2) / 25 = 52,020
    assert laplacian_variance(img) == 52020.0
    assert laplacian_variance(np.full((8, 8), 77, np.uint8)) == 0.0


def test_blur_is_judged_against_the_run_median():
    variances = [100.0, 100.0, 100.0, 10.0, 30.0, None, 0.0]
    out = find_blur(list("abcdefg"), ["x"] * 7, variances)
    # median of the measured, non-uniform 100, 100, 100, 10, 30 is 100: limit 25
    assert [f.path for f in out.findings] == ["d"]
    assert out.findings[0].reason == "Laplacian variance 10.0 (run median 100.0)"
    assert find_blur(["a", "b"], ["x", "x"], [1.0, 2.0]).skipped


def test_near_empty_and_colour_films():
    # of 200 pixels the 2nd (1%) and the 198th (99%) are both grey 100; of 100, the 1st is black
    assert grey_spread(_hist({100: 198, 0: 1, 255: 1})) == 0.0
    assert grey_spread(_hist({100: 98, 0: 1, 255: 1})) == 100 / 255
    assert content_problem(_hist({100: 100}), 0.0) == ("almost uniform", 0.0)
    spread = _hist({0: 50, 255: 50})
    assert content_problem(spread, 0.2) == ("in colour", 0.2)
    assert content_problem(spread, 0.05) is None
    out = find_content(["photo", "blank", "film", "unread"], ["x"] * 4,
                       [spread, _hist({100: 100}), spread, None], [0.3, 0.0, 0.0, None])
    assert [f.path for f in out.findings] == ["blank", "photo"]  # uniform first
    assert out.findings[1].reason == "in colour: channel spread 0.30; radiographs are grey"


def test_pixels_are_measured_at_one_size():
    hist, lap = measure_pixels(np.full((64, 32), 0.5, np.float32))
    assert hist.sum() == 256 * 128  # 64 x 32 scaled to 256 x 128
    assert hist[128] == hist.sum() and lap == 0.0  # 0.5 is grey 127.5, rounded to 128
