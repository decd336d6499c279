"""Synthetic chest radiographs: a phantom chest (core.demo.anatomy), the lesions of its class
(core.demo.lesions), then an exposure with its own positioning, contrast, noise and side marker.

Every random choice of the exposure is drawn independently of the class, so brightness,
position or noise never give the label away: only the lesions do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from core.demo.anatomy import Anatomy, render_chest
from core.demo.geometry import make_frame
from core.demo.lesions import add_lesions
from core.duplicates.calibration.edits import text_font

MIN_RENDER = 128  # pixels; finer structures (ribs, vessels) alias below this
_LUT_SIZE = 4096  # grey levels before gamma, fine enough to leave no banding


@dataclass(frozen=True)
class Acquisition:
    """How one image was taken: positioning, exposure, noise and the side marker."""

    zoom: float
    shift: tuple[float, float]
    angle: float  # degrees
    lo: float  # density shown as black
    hi: float  # density shown as white
    gamma: float
    noise: float  # std of additive noise, in [0, 1] grey units
    blur: float  # detector unsharpness, pixels at 256 px
    tilt: tuple[float, float]  # linear exposure gradient (heel effect)
    marker: str  # "L" or "R"
    corner: int  # 0..3, clockwise from top-left


def sample_acquisition(rng: np.random.Generator) -> Acquisition:
    """Draw positioning and exposure, independent of the class so it cannot leak the label.

    Args:
        rng: source of randomness.

    Returns:
        The image's Acquisition.
    """
    lo = rng.uniform(-0.1, 0.03)
    return Acquisition(
        zoom=rng.uniform(0.92, 1.08),
        shift=(rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05)),
        angle=rng.uniform(-4.0, 4.0),
        lo=lo,
        hi=lo + rng.uniform(0.85, 1.15),
        gamma=float(np.exp(rng.uniform(-0.25, 0.25))),
        noise=rng.uniform(0.008, 0.035),
        blur=rng.uniform(0.3, 1.0),
        tilt=(rng.uniform(-0.06, 0.06), rng.uniform(-0.06, 0.06)),
        marker=str(rng.choice(["L", "R"])),
        corner=int(rng.integers(4)),
    )


def render_phantom(label: str, a: Anatomy, acq: Acquisition, size: int,
                   rng: np.random.Generator) -> Image.Image:
    """Render one synthetic radiograph.

    Args:
        label: class name (see core.demo.lesions.CLASSES).
        a: the patient's anatomy.
        acq: positioning and exposure.
        size: image side in pixels.
        rng: randomness for lesions and noise.

    Returns:
        Mode "L" image of shape (size, size).
    """
    work = max(size, MIN_RENDER)  # small images are rendered larger and shrunk: no aliasing
    f = make_frame(work, acq.zoom, acq.shift, acq.angle)
    chest = render_chest(f, a, rng)
    dens = add_lesions(chest.density, label, f, a, chest.lung, rng)  # (work, work)
    return expose(dens, acq, size, rng)


def expose(dens: np.ndarray, acq: Acquisition, size: int, rng: np.random.Generator) -> Image.Image:
    """Turn density into an 8-bit radiograph: window, gamma, resize, blur, noise, side marker.

    Args:
        dens: (N, N) density map of the chest with its lesions.
        acq: exposure settings.
        size: output side in pixels.
        rng: randomness for the noise.

    Returns:
        Mode "L" image of shape (size, size).
    """
    ramp = np.linspace(-1.0, 1.0, dens.shape[0], dtype=np.float32)
    dens = dens + acq.tilt[0] * ramp[None, :] + acq.tilt[1] * ramp[:, None]  # (N, N)
    level = np.clip((dens - acq.lo) * ((_LUT_SIZE - 1) / (acq.hi - acq.lo)), 0, _LUT_SIZE - 1)
    lut = (np.linspace(0.0, 1.0, _LUT_SIZE) ** acq.gamma * 255.0 + 0.5).astype(np.uint8)
    img = Image.fromarray(lut[level.astype(np.int32)], mode="L")  # gamma via a look-up table
    if img.width != size:
        img = img.resize((size, size), Image.Resampling.BOX)  # (size, size)
    tap = math.exp(-1.0 / (2.0 * max(acq.blur * size / 256.0, 0.2) ** 2))  # 3-tap Gaussian
    kernel = np.outer([tap, 1.0, tap], [tap, 1.0, tap])
    img = img.filter(ImageFilter.Kernel((3, 3), kernel.ravel().tolist(), float(kernel.sum())))
    sigma = acq.noise * 255.0 * (size / 256.0) ** 0.5  # shrinking an image averages noise away
    noise = rng.standard_normal((size, size), dtype=np.float32) * np.float32(sigma)
    noisy = np.asarray(img, dtype=np.float32) + noise + np.float32(0.5)
    img = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), mode="L")
    burn_marker(img, acq.marker, acq.corner)
    return img


def burn_marker(img: Image.Image, text: str, corner: int, scale: float = 0.075) -> None:
    """Burn a white letter (the lead side marker) into a corner, in place.

    Args:
        img: mode "L" image, modified in place.
        text: the marker text, "L" or "R".
        corner: 0..3, clockwise from top-left.
        scale: letter height as a fraction of the image side.
    """
    size = img.width
    font = text_font(max(7, round(size * scale)))
    draw = ImageDraw.Draw(img)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    margin = round(size * 0.05)
    x = margin if corner in (0, 3) else size - margin - right
    y = margin if corner in (0, 1) else size - margin - bottom
    draw.text((x - left, y - top), text, fill=245, font=font)
