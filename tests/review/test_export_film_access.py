"""The keep list opens films through the one allowed-roots check (issue 28 item 3): the size of a
film outside the dataset folder and the allowed roots is not read, so not shown."""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.review.export import image_facts


def test_image_facts_read_only_films_inside_the_allowed_roots(tmp_path):
    data, arrivals, outside = tmp_path / "data", tmp_path / "arrivals", tmp_path / "outside"
    for d in (data, arrivals, outside):
        d.mkdir()
        Image.fromarray(np.zeros((6, 10), np.uint8)).save(d / "x.png")
    inside, elsewhere = str(arrivals / "x.png"), str(outside / "x.png")
    facts = image_facts(data, ["x.png", inside, elsewhere], roots=(arrivals,))
    assert (facts["x.png"].width, facts["x.png"].height) == (10, 6)
    assert (facts[inside].width, facts[inside].height) == (10, 6)  # a film `add` took from there
    assert (facts[elsewhere].width, facts[elsewhere].height, facts[elsewhere].bytes) == (0, 0, 0)
    assert image_facts(data, [elsewhere])[elsewhere].bytes == 0  # no roots: the dataset folder only
