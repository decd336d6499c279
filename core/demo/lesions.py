"""Lesions of the demo classes, added to a phantom's density map (see core.demo.phantom).

- Normal: none.
- COVID-19: bilateral, peripheral, lower-zone ground-glass opacities (hazy; vessels still show).
- Consolidation: one lobe filled almost to soft-tissue density, a sharp fissure on one side,
  air bronchograms inside.
- Nodules_Cavities: one to four round upper-zone nodules, some cavitated (dark air centre in a
  thick wall, sometimes with a fluid level).

Sizes are chosen so every lesion is still several pixels wide at 64 px.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from core.demo.anatomy import LUNG_AIR, Anatomy, lung_reach
from core.demo.geometry import Frame, edge, paint, smooth_noise

CLASSES = ("Normal", "COVID-19", "Consolidation", "Nodules_Cavities")


def add_lesions(dens: np.ndarray, label: str, f: Frame, a: Anatomy, lung: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
    """Add the lesions of `label` to a density map.

    Args:
        dens: (H, W) density map of the normal chest; left unchanged.
        label: one of CLASSES.
        f: pixel coordinates.
        a: the patient's anatomy (dome heights, lung reach).
        lung: (H, W) aerated-lung mask in [0, 1].
        rng: randomness for the lesions.

    Returns:
        (H, W) density map with lesions.

    Raises:
        ValueError: unknown label.
    """
    if label not in CLASSES:
        raise ValueError(f"unknown demo class {label!r}; expected one of {', '.join(CLASSES)}")
    if label == "COVID-19":
        return dens + _ground_glass(f, a, lung, rng)
    if label == "Consolidation":
        return dens + _consolidation(f, a, lung, rng)
    if label == "Nodules_Cavities":
        return dens + _nodules(f, a, rng)
    return dens


def _ground_glass(f: Frame, a: Anatomy, lung: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Patchy hazy opacities in both lungs' outer lower zones."""
    acc = np.zeros_like(f.x)
    for side, dome in ((-1, a.dome_r), (1, a.dome_l)):
        for _ in range(int(rng.integers(4, 7))):
            cx = side * rng.uniform(0.48, a.lung_w - 0.02)
            cy = rng.uniform(-0.15, dome + 0.05)
            sig, peak = rng.uniform(0.07, 0.12), rng.uniform(0.6, 1.0)
            paint(acc, f, (cx - 3 * sig, cy - 3 * sig, cx + 3 * sig, cy + 3 * sig),
                  lambda g, cx=cx, cy=cy, sig=sig, peak=peak: peak * np.exp(
                      ((g.x - cx) ** 2 + (g.y - cy) ** 2) * (-0.5 / (sig * sig))))
    patchy = 0.45 + 0.55 * smooth_noise(rng, f.size, 9)
    return LUNG_AIR * rng.uniform(0.6, 0.8) * np.minimum(acc, 1.0) * patchy * lung


_LOBES = {  # lobe -> (side, centre for the bronchograms)
    "RUL": (-1, (-0.45, -0.4)), "RML": (-1, (-0.33, 0.12)), "RLL": (-1, (-0.52, 0.3)),
    "LUL": (1, (0.5, -0.38)), "LLL": (1, (0.55, 0.3)),
}


def _consolidation(f: Frame, a: Anatomy, lung: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One lobe made airless, with air bronchograms."""
    lobe = str(rng.choice(list(_LOBES)))
    side, (cx, cy) = _LOBES[lobe]
    fissure = rng.uniform(-0.14, -0.04) + 0.08 * f.s  # horizontal fissure, sharp
    sharp, soft = f.px * 2, rng.uniform(0.1, 0.2)
    if lobe == "RUL":
        region = edge(fissure - f.y, sharp)
    elif lobe == "RML":
        region = edge(f.y - fissure, sharp) * edge(0.55 - f.s, soft) * edge(a.dome_r - 0.03 - f.y, soft)
    elif lobe == "LUL":
        region = edge(rng.uniform(-0.1, 0.05) - f.y, soft)
    else:
        region = edge(f.y - rng.uniform(0.0, 0.12) - 0.1 * (f.s - 0.5), soft)
    region = region * (f.x * side > 0) * lung
    texture = 0.8 + 0.2 * smooth_noise(rng, f.size, 12)
    fill = LUNG_AIR * rng.uniform(0.8, 0.95) * region * texture
    return fill - 0.11 * region * _bronchograms(f, side, cx, cy, rng)


def _bronchograms(f: Frame, side: int, cx: float, cy: float, rng: np.random.Generator) -> np.ndarray:
    """Dark branching tubes from the hilum into the lobe, in [0, 1]."""
    half = f.size // 2  # drawn at half size: upsampling softens the lines, no blur needed
    img = Image.new("L", (half, half), 0)
    draw = ImageDraw.Draw(img)
    unit = half / 128.0
    for _ in range(int(rng.integers(3, 6))):
        x, y = side * 0.22, rng.uniform(-0.1, 0.05)
        tx, ty = cx + rng.uniform(-0.15, 0.15), cy + rng.uniform(-0.15, 0.15)
        pts = [f.to_pixel(x, y, half)]
        for t in (0.35, 0.7, 1.0):  # slightly wavy path to the target
            pts.append(f.to_pixel(x + t * (tx - x) + rng.uniform(-0.03, 0.03),
                                  y + t * (ty - y) + rng.uniform(-0.03, 0.03), half))
        draw.line(pts, fill=255, width=max(1, round(1.5 * unit)))
    img = img.resize((f.size, f.size), Image.Resampling.BILINEAR)  # (size, size)
    return np.asarray(img, dtype=np.float32) / 255.0


def _nodules(f: Frame, a: Anatomy, rng: np.random.Generator) -> np.ndarray:
    """Round upper-zone nodules; about half of them cavitated."""
    out = np.zeros_like(f.x)
    for i in range(int(rng.integers(1, 5))):
        side = 1 if rng.uniform() < 0.5 else -1
        cy = rng.uniform(a.apex + 0.2, 0.05)
        big = i == 0  # the first lesion is the largest, so every image shows one clearly
        radius = rng.uniform(0.08, 0.11) if big else rng.uniform(0.045, 0.08)
        cx = side * rng.uniform(0.25, max(0.26, lung_reach(a, cy) - radius - 0.04))
        amp = rng.uniform(0.28, 0.36)
        cavity = None
        if rng.uniform() < (0.6 if big else 0.35):  # (inner radius, offset, fluid level or None)
            inner = radius * rng.uniform(0.45, 0.65)
            level = cy + rng.uniform(0.0, 0.4) * inner if rng.uniform() < 0.3 else None
            cavity = (inner, rng.uniform(-0.2, 0.2) * inner, level)
        box = (cx - radius, cy - radius, cx + radius, cy + radius)
        paint(out, f, box, lambda g, cx=cx, cy=cy, r=radius, amp=amp, cav=cavity:
              _nodule(g, cx, cy, r, amp, cav))
    return out


def _nodule(g: Frame, cx: float, cy: float, radius: float, amp: float,
            cavity: tuple[float, float, float | None] | None) -> np.ndarray:
    """One spherical nodule; a cavity is an air hole in it, optionally with a fluid level."""
    ball = np.sqrt(np.clip(1.0 - (np.hypot(g.x - cx, g.y - cy) / radius) ** 2, 0.0, 1.0))
    solid = amp * ball
    if cavity is None:
        return solid
    inner, offset, level = cavity
    hole = edge(inner - np.hypot(g.x - cx - offset, g.y - cy), g.px * 2)
    if level is not None:  # air-fluid level: only the top of the cavity holds air
        hole *= edge(level - g.y, g.px)
    return solid - hole * (solid + 0.05)  # the air is a little darker than lung
