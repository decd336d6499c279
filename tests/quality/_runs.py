"""Hand-made run folders for the quality and report tests: a few PNG films, a config.json and
the items and vectors of a run (no training), so each list's members are known in advance."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.embed.embeddings import Embeddings, l2_normalize
from core.files import atomic_write_json


@dataclass(frozen=True)
class Film:
    """One film: its pixels ((H, W) grey or (H, W, 3) colour, uint8), label and embedding."""

    name: str
    pixels: np.ndarray
    label: str
    vector: tuple[float, ...]
    split: str = "train"
    patient: str = ""


def chest(seed: int, size: int = 64) -> np.ndarray:
    """A textured mid-grey film, different for every seed: (size, size) uint8, mean about 0.5."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    img = 0.5 + 0.25 * np.sin(2 * np.pi * (x * rng.uniform(2, 4) + y * rng.uniform(2, 4)))
    return np.clip(np.rint((img + rng.normal(0, 0.05, img.shape)) * 255), 0, 255).astype(np.uint8)


def make_run(root: Path, films: list[Film]) -> Path:
    """Write the films under root/data and a run folder root/run naming them; returns the run."""
    data = root / "data"
    for f in films:
        path = data / f.name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(f.pixels).save(path)
    run = root / "run"
    run.mkdir(parents=True)
    atomic_write_json(run / "config.json", {"data": str(data), "preset": "tiny"})
    vectors = l2_normalize(np.array([f.vector for f in films], dtype=np.float32))
    Embeddings([f.name for f in films], [f.label for f in films], [f.split for f in films],
               [f.patient for f in films], vectors).save(run)
    return run


def standard_films(labelled: bool = True) -> list[Film]:
    """Twelve films with one member of each list known:
    - 'a/odd.png' is labelled 'b' but sits among the a's (a likely label error);
    - 'a/far.png' points away from every other film (an outlier);
    - 'b/dark.png' has mean grey about 0.1 (too dark), 'b/bright.png' about 0.9 (too bright);
    - 'b/blank.png' is uniform grey (near-empty), 'b/colour.png' is yellow (in colour);
    - 'a/soft.png' is a chest film blurred flat (blur).
    """
    def lab(x: str) -> str:
        return x if labelled else ""

    a = [Film(f"a/a{i}.png", chest(i), lab("a"), (1.0, 0.02 * i, 0.0)) for i in range(5)]
    smooth = np.asarray(Image.fromarray(chest(99)).resize((8, 8), Image.Resampling.BOX)
                        .resize((64, 64), Image.Resampling.BILINEAR))
    colour = np.zeros((64, 64, 3), np.uint8)
    colour[..., 0], colour[..., 1] = chest(7), chest(7)  # yellow: the blue channel stays 0
    dark = np.clip(chest(8).astype(np.int16) - 110, 0, 255).astype(np.uint8)  # textured, mean about 0.1
    b = [Film("b/dark.png", dark, lab("b"), (0.0, 1.0, 0.0)),
         Film("b/bright.png", 255 - dark, lab("b"), (0.0, 1.0, 0.02)),
         Film("b/blank.png", np.full((64, 64), 128, np.uint8), lab("b"), (0.0, 1.0, 0.04)),
         Film("b/colour.png", colour, lab("b"), (0.0, 1.0, 0.06)),
         Film("b/b4.png", chest(14), lab("b"), (0.02, 1.0, 0.08))]
    return [*a, Film("a/odd.png", chest(20), lab("b"), (1.0, 0.05, 0.01)),
            Film("a/soft.png", smooth, lab("a"), (1.0, 0.09, 0.0)),
            *b, Film("a/far.png", chest(30), lab("a"), (-1.0, -1.0, 1.0))]
