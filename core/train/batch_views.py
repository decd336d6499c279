"""XRayViews for a whole batch at once: the same augmentations as tensor ops on the device.

`core.model.transforms.XRayViews` augments one image at a time in a loader process. On a
2-core CPU that process takes a core's time slices from the model's threads (the `quick`
loop ran at 0.43-0.70 of the model alone); here one batch of views costs a few milliseconds
of the model's own threads (or the GPU's), so the loader only gathers uint8 films.

Per view, as XRayViews draws them: a random resized crop (area in [crop_scale_min, 1],
aspect ratio in [0.85, 1.18]), a rotation in +-rotation_deg about the crop's centre (corners
black), brightness then contrast jitter (or contrast then brightness, at random, as
torchvision's ColorJitter), an optional horizontal flip, and with blur_prob a Gaussian blur
(sigma in [0.1, blur_sigma_max], reflect padding). Crop, rotation and flip are one affine
resampling (bilinear), not three.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from core.config import AugmentConfig
from core.model.transforms import normalize


class BatchViews:
    """Augment a batch of decoded films: (B, 1, S, S) uint8 -> (B, 1, size, size) float32, normalised.

    Random numbers come from torch's global generator on the CPU (the Trainer seeds it per
    epoch), so a run's views do not depend on the device.
    """

    def __init__(self, size: int, cfg: AugmentConfig | None = None) -> None:
        self.size = size
        self.cfg = cfg or AugmentConfig()
        self.kernel = max(3, (size // 20) | 1)  # as XRayViews

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        c, b = self.cfg, images.shape[0]
        dev = images.device
        x = images.float() / 255.0  # (B, 1, S, S) in [0, 1]
        u = torch.rand(b, 9)  # every draw of the batch at once, on the CPU
        w, h = self._crop_sides(b)  # crop side / film side
        cx = (1.0 - w) * (2 * u[:, 2] - 1)  # crop centre in [-1, 1] coordinates
        cy = (1.0 - h) * (2 * u[:, 3] - 1)
        angle = math.radians(c.rotation_deg) * (2 * u[:, 4] - 1)
        flip = torch.where(u[:, 5] < 0.5, -1.0, 1.0) if c.hflip else torch.ones(b)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # output (x, y) -> rotated crop coordinates R (flip x, y) -> film: centre + half-size * that
        rot = torch.stack([torch.stack([cos * flip, -sin], 1), torch.stack([sin * flip, cos], 1)], 1)
        theta = torch.cat([rot * torch.stack([w, h], 1)[:, :, None], torch.stack([cx, cy], 1)[:, :, None]], 2)
        grid = F.affine_grid(theta.to(dev), [b, 1, self.size, self.size], align_corners=False)
        inside = F.affine_grid(torch.cat([rot, torch.zeros(b, 2, 1)], 2).to(dev),
                               [b, 1, self.size, self.size], align_corners=False)
        keep = (inside.abs() <= 1).all(-1)[:, None]  # (B, 1, size, size): inside the rotated crop
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False) * keep
        x = self._jitter(x, u[:, 6:8].to(dev), bool(c.brightness or c.contrast))
        if c.blur_prob > 0:
            x = self._blur(x, u[:, 8])
        return normalize((x * 255.0).round().to(torch.uint8))  # uint8 steps, as XRayViews

    def _crop_sides(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """RandomResizedCrop's draw: up to 10 tries of (area, log aspect) for a crop that fits,
        else the whole film (a square film fits the ratio range)."""
        lo = self.cfg.crop_scale_min
        area = lo + (1.0 - lo) * torch.rand(b, 10)
        ratio = torch.exp(math.log(0.85) + (math.log(1.18) - math.log(0.85)) * torch.rand(b, 10))
        w, h = torch.sqrt(area * ratio), torch.sqrt(area / ratio)  # (B, 10)
        fits = (w <= 1) & (h <= 1)
        first = fits.float().argmax(1, keepdim=True)  # the first try that fits
        found = fits.any(1)
        w = torch.where(found, w.gather(1, first)[:, 0], torch.ones(b))
        h = torch.where(found, h.gather(1, first)[:, 0], torch.ones(b))
        return w, h

    def _jitter(self, x: torch.Tensor, u: torch.Tensor, on: bool) -> torch.Tensor:
        if not on:
            return x
        c = self.cfg
        bright = (1 - c.brightness + 2 * c.brightness * u[:, 0])[:, None, None, None]
        contrast = (1 - c.contrast + 2 * c.contrast * u[:, 1])[:, None, None, None]

        def b_then_c(t: torch.Tensor) -> torch.Tensor:
            t = (t * bright).clamp(0, 1)
            mean = t.mean((1, 2, 3), keepdim=True)
            return ((t - mean) * contrast + mean).clamp(0, 1)

        def c_then_b(t: torch.Tensor) -> torch.Tensor:
            mean = t.mean((1, 2, 3), keepdim=True)
            t = ((t - mean) * contrast + mean).clamp(0, 1)
            return (t * bright).clamp(0, 1)

        order = (torch.rand(x.shape[0]) < 0.5).to(x.device)[:, None, None, None]
        return torch.where(order, b_then_c(x), c_then_b(x))

    def _blur(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Per-view separable Gaussian blur; views not drawn for blurring keep a delta kernel."""
        c, k, b = self.cfg, self.kernel, x.shape[0]
        blurred = torch.rand(b) < c.blur_prob
        sigma = 0.1 + (c.blur_sigma_max - 0.1) * u
        offsets = torch.arange(k, dtype=torch.float32) - (k - 1) / 2
        kern = torch.exp(-0.5 * (offsets[None] / sigma[:, None]) ** 2)  # (B, k)
        kern = kern / kern.sum(1, keepdim=True)
        delta = (offsets.abs() < 0.5).float().expand(b, k)
        kern = torch.where(blurred[:, None], kern, delta).to(x.device)
        pad = k // 2
        y = F.pad(x.transpose(0, 1), (pad, pad, pad, pad), mode="reflect")  # (1, B, H+2p, W+2p)
        y = F.conv2d(y, kern[:, None, None, :], groups=b)  # along x
        y = F.conv2d(y, kern[:, None, :, None], groups=b)  # along y
        return y.transpose(0, 1)  # (B, 1, size, size)
