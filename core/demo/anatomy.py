"""Normal PA chest anatomy of the phantoms, as a density map (bright = dense, dark = air).

Thorax outline and soft tissue, lungs cut by the mediastinum and a heart that bulges to the
patient's left (image right), trachea, domes of the diaphragm (the right one higher), gastric
bubble, posterior and anterior ribs, clavicles, spine, scapulae, humeral heads, hila and
branching vessels. Canonical coordinates: see core.demo.geometry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from core.demo.geometry import Frame, edge, paint, smooth_noise

LUNG_AIR = 0.40  # density that aerated lung removes; an airless lobe gets it back


@dataclass(frozen=True)
class Anatomy:
    """One patient's body; a follow-up image of the same patient reuses it."""

    body_w: float  # half-width of the chest wall
    lung_w: float  # lateral reach of the lungs
    apex: float  # y of the lung apices
    dome_r: float  # y of the right (image left) hemidiaphragm's top
    dome_l: float  # y of the left hemidiaphragm's top, a little lower
    heart_cx: float
    heart_cy: float
    heart_rx: float
    heart_ry: float
    med_w: float  # half-width of the upper mediastinum
    rib_sp: float  # spacing of the posterior ribs
    tissue: float  # soft-tissue thickness factor (habitus)
    vessel_seed: int


@dataclass(frozen=True)
class Chest:
    """A rendered normal chest."""

    density: np.ndarray  # (H, W) float32
    lung: np.ndarray  # (H, W) aerated-lung mask in [0, 1], where lesions may go


def sample_anatomy(rng: np.random.Generator) -> Anatomy:
    """Draw a plausible adult chest.

    Args:
        rng: source of randomness.

    Returns:
        The patient's Anatomy.
    """
    body_w = rng.uniform(0.86, 0.97)
    dome_r = rng.uniform(0.36, 0.50)
    dome_l = dome_r + rng.uniform(0.03, 0.09)
    return Anatomy(
        body_w=body_w,
        lung_w=min(rng.uniform(0.74, 0.84), body_w - 0.08),
        apex=rng.uniform(-0.84, -0.74),
        dome_r=dome_r,
        dome_l=dome_l,
        heart_cx=rng.uniform(0.08, 0.14),
        heart_cy=dome_l - rng.uniform(0.08, 0.14),
        heart_rx=rng.uniform(0.36, 0.44),
        heart_ry=rng.uniform(0.26, 0.31),
        med_w=rng.uniform(0.09, 0.12),
        rib_sp=rng.uniform(0.125, 0.145),
        tissue=rng.uniform(0.85, 1.15),
        vessel_seed=int(rng.integers(2**31)),
    )


def lung_reach(a: Anatomy, y: np.ndarray | float) -> np.ndarray | float:
    """Lateral extent of the lungs at height y: zero at the apex, rounding out below it."""
    return a.lung_w * np.sqrt(np.clip(1.0 - np.exp(-(y - a.apex) / 0.3), 0.0, 1.0))


def render_chest(f: Frame, a: Anatomy, rng: np.random.Generator) -> Chest:
    """Render a normal chest.

    Args:
        f: pixel coordinates.
        a: the patient's anatomy.
        rng: randomness for this image (bubble, lung texture).

    Returns:
        Chest with the density map and the lung mask, both (H, W).
    """
    lung = _lungs(f, a)
    depth = 1.0 - 0.25 * edge(f.y - a.dome_r + 0.35, 0.4)  # breasts and bases are thicker
    # bone shows best against air: over soft tissue the ribs fade, as on a real film
    bones = _ribs(f, a) * (0.45 + 0.55 * np.minimum(lung * np.float32(1 / 0.7), 1.0))
    dens = 0.62 * a.tissue * _body(f, a) - LUNG_AIR * depth * lung + bones
    scap = 0.06 * edge(f.s - (0.64 + 0.22 * (f.y + 0.7)), f.px * 3) * edge(-0.1 - f.y, 0.1)
    dens += scap  # the scapulae overlap the upper outer lungs
    paint(dens, f, (-0.12, -1.5, 0.12, 1.5), _spine)
    for side in (-1, 1):
        cx = side * (a.body_w + 0.12)
        paint(dens, f, (cx - 0.25, -1.15, cx + 0.25, -0.63), lambda g, cx=cx: 0.3 * np.sqrt(
            np.clip(1.0 - np.hypot(g.x - cx, g.y + 0.88) / 0.22, 0.0, 1.0)))  # humeral heads
        paint(dens, f, (side * 0.21 - 0.2, -0.22, side * 0.21 + 0.2, 0.18), lambda g, side=side:
              0.1 * np.exp(-((g.x - side * 0.21) ** 2 + (g.y + 0.02) ** 2) / 0.005))  # hila
    paint(dens, f, (-0.06, -1.5, 0.08, -0.2), lambda g: -0.12 * edge(
        0.03 - np.abs(g.x - 0.012 * (g.y + 1.0)), g.px * 2) * edge(-0.3 - g.y, 0.05))  # trachea
    if rng.uniform() < 0.7:  # gastric air bubble under the left hemidiaphragm
        cy = a.dome_l + 0.11
        paint(dens, f, (0.2, cy - 0.09, 0.46, cy + 0.09), lambda g: -0.15 * edge(
            1.0 - np.hypot((g.x - 0.33) / 0.1, (g.y - cy) / 0.055), 0.5))
    dens += lung * (_vessels(f, a) + 0.05 * smooth_noise(rng, f.size, 16))  # lung markings
    return Chest(dens, lung)


def _body(f: Frame, a: Anatomy) -> np.ndarray:
    """Soft-tissue thickness of the trunk, widening into the shoulders at the top."""
    shoulders = 0.35 * edge(-0.55 - f.y, 0.35)
    w = a.body_w + shoulders - 0.06 * np.clip(f.y - 0.6, 0, None)  # (H, W)
    body = np.sqrt(np.clip(1.0 - (f.x / w) ** 2, 0.0, 1.0))
    return body * edge(1.0 - 0.15 * body - f.s / w, f.px * 3)


def _lungs(f: Frame, a: Anatomy) -> np.ndarray:
    """Aerated lung mask: apex to domes, cut by the mediastinum, aortic knob and heart."""
    lateral = f.s - 0.38
    dome = np.where(f.right, a.dome_r, a.dome_l) + np.where(lateral > 0, 0.9, 0.25) * lateral**2
    reach = lung_reach(a, f.y)
    lung = edge(reach - f.s, f.px * 4) * edge(dome - f.y, f.px * 3)
    lung *= 0.7 + 0.3 * edge(reach - f.s - 0.12, 0.3)  # thinner near the chest wall
    dx, dy = f.x - a.heart_cx, f.y - a.heart_cy
    hx = (0.87 * dx + 0.5 * dy) / a.heart_rx  # long axis tilted down to the patient's left
    hy = (-0.5 * dx + 0.87 * dy) / a.heart_ry
    med = edge((1.0 - np.sqrt(hx * hx + hy * hy)) * a.heart_ry, f.px * 2)
    np.maximum(med, edge(a.med_w + 0.04 * edge(-0.55 - f.y, 0.3) - np.abs(f.x - 0.01), f.px * 3),
               out=med)
    got = f.crop(a.med_w - 0.1, -0.4, a.med_w + 0.1, -0.2)
    if got is not None:  # aortic knob, on the patient's left
        g, win = got
        np.maximum(med[win], edge(0.09 - np.hypot(g.x - a.med_w, g.y + 0.3), g.px * 3), out=med[win])
    return lung * (1.0 - med)


def _ribs(f: Frame, a: Anatomy) -> np.ndarray:
    """Posterior rib arcs (periodic along a curved axis), fainter anterior ribs, clavicles."""
    s = f.s
    reach = edge(s - 0.07, 0.03) * edge(a.body_w - 0.03 - s, 0.03)
    phase = (f.y + 0.45 * s - 0.75 * s * s - (a.apex - 0.08)) / a.rib_sp  # (H, W)
    k, frac = np.floor(phase), phase - np.floor(phase)
    dist, half = np.abs(frac - 0.5) * a.rib_sp, (0.15 + 0.08 * s) * a.rib_sp  # canonical units
    cortex = 0.65 + 0.35 * np.minimum(dist / half, 1.0) ** 2  # brighter rim
    post = edge(half - dist, max(f.px * 1.5, 0.01)) * cortex * ((k >= 0) & (k <= 9))
    phase2 = (f.y + 0.9 * s - 0.3 * s * s - (a.apex + 0.2)) / (a.rib_sp * 1.5)
    dist2 = np.abs(phase2 - np.floor(phase2) - 0.5) * a.rib_sp * 1.5
    ant = edge(0.035 - dist2, max(f.px * 1.5, 0.02)) * ((phase2 >= 0) & (phase2 < 5))
    ribs = reach * (0.12 * post + 0.07 * ant * edge(s - 0.3, 0.08))
    paint(ribs, f, (-0.85, a.apex - 0.1, 0.85, a.apex + 0.3), lambda g: 0.16 * _clavicles(g, a))
    return ribs


def _clavicles(g: Frame, a: Anatomy) -> np.ndarray:
    """Both clavicles: bars from the sternal notch rising laterally to the shoulders."""
    axis = a.apex + 0.14 - 0.28 * (g.s - 0.1) + 0.3 * (g.s - 0.45) ** 2
    return edge(0.03 - np.abs(g.y - axis), g.px * 2) * edge(g.s - 0.06, 0.02) * edge(0.8 - g.s, 0.04)


def _spine(g: Frame) -> np.ndarray:
    """Vertebral column: bodies separated by discs, with the pedicles' rings."""
    ph = (g.y + 1.0) / 0.105
    fr = ph - np.floor(ph)
    column = edge(0.075 - g.s, g.px * 2) * (0.6 + 0.4 * edge(0.4 - np.abs(fr - 0.55), 0.1))
    ped = edge(0.018 - np.hypot(g.s - 0.055, (fr - 0.45) * 0.105), g.px * 1.5)
    return 0.05 * column + 0.04 * ped


def _vessels(f: Frame, a: Anatomy) -> np.ndarray:
    """Branching pulmonary vessels fanning from each hilum, drawn as tapering lines."""
    rng = np.random.default_rng(a.vessel_seed)  # the patient's own vessel tree
    half = f.size // 2  # drawn at half size: upsampling softens the lines, no blur needed
    img = Image.new("L", (half, half), 0)
    draw = ImageDraw.Draw(img)
    unit = half / 128.0

    def branch(x: float, y: float, ang: float, length: float, width: float, depth: int) -> None:
        x2, y2 = x + length * math.cos(ang), y + length * math.sin(ang)
        draw.line([f.to_pixel(x, y, half), f.to_pixel(x2, y2, half)], fill=int(120 + 40 * depth),
                  width=max(1, round(width * unit)))
        if depth > 0:
            for turn in (-1, 1):
                branch(x2, y2, ang + turn * rng.uniform(0.25, 0.6),
                       length * rng.uniform(0.55, 0.75), width * 0.7, depth - 1)

    for side in (-1, 1):  # -1: patient right, image left
        hx, hy = side * (0.2 + rng.uniform(-0.02, 0.03)), rng.uniform(-0.08, 0.02)
        for ang in np.linspace(-1.2, 1.3, 8) + rng.uniform(-0.12, 0.12, 8):
            direction = ang if side > 0 else math.pi - ang  # fan laterally, up and down
            branch(hx, hy, direction, rng.uniform(0.22, 0.32), 1.6, 2)
    img = img.resize((f.size, f.size), Image.Resampling.BILINEAR)  # (size, size)
    return np.asarray(img, dtype=np.float32) * np.float32(0.085 / 255.0)
