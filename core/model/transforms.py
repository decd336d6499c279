"""Turn grayscale arrays into model inputs: two augmented views (train) or one clean view."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from core.config import AugmentConfig

# One normalisation for training, embedding and queries: ImageNet's mean/std averaged over RGB,
# since the encoder sees one grayscale channel (conv1 summed over RGB when ImageNet-initialised).
MEAN = 0.449
STD = 0.226


def to_uint8_tensor(pixels: np.ndarray, size: int) -> torch.Tensor:
    """Resize a (H, W) float image in [0, 1] to a (1, size, size) uint8 tensor.

    The whole image is resized (no crop) so nothing at the edges is lost.
    """
    t = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))[None, None]  # (1,1,H,W)
    t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (t[0].clamp(0, 1) * 255).round().to(torch.uint8)  # (1, size, size)


def normalize(batch_uint8: torch.Tensor) -> torch.Tensor:
    """(..., 1, H, W) uint8 -> float32 normalised with MEAN/STD."""
    return (batch_uint8.float() / 255.0 - MEAN) / STD


def eval_view(pixels: np.ndarray, size: int) -> torch.Tensor:
    """The clean view used for embedding and queries: (1, size, size) float32."""
    return normalize(to_uint8_tensor(pixels, size))


class XRayViews:
    """Two independently augmented views of one radiograph, for SimCLR.

    Augmentations (MoCo-CXR, Sowrirajan et al. 2021; SimCLR, Chen et al. 2020):
    random resized crop with a high scale floor (aggressive crops erase the few pixels that
    carry disease), rotation within +-10 degrees, brightness/contrast jitter, mild Gaussian
    blur, optional horizontal flip (off by default: it swaps laterality). Hue/saturation
    jitter and random grayscale are dropped: they mean nothing on a grayscale film.

    Input: (1, S, S) uint8 tensor. Output: two (1, size, size) float32 tensors.
    """

    def __init__(self, size: int, cfg: AugmentConfig | None = None) -> None:
        cfg = cfg or AugmentConfig()
        steps: list = [
            v2.RandomResizedCrop(size, scale=(cfg.crop_scale_min, 1.0), ratio=(0.85, 1.18),
                                 antialias=True),
            v2.RandomRotation(cfg.rotation_deg),
            v2.ColorJitter(brightness=cfg.brightness, contrast=cfg.contrast),
        ]
        if cfg.hflip:
            steps.append(v2.RandomHorizontalFlip())
        if cfg.blur_prob > 0:
            kernel = max(3, (size // 20) | 1)
            steps.append(v2.RandomApply([v2.GaussianBlur(kernel, sigma=(0.1, cfg.blur_sigma_max))],
                                        p=cfg.blur_prob))
        self.transform = v2.Compose(steps)

    def one(self, image: torch.Tensor) -> torch.Tensor:
        """One augmented, normalised view: (1, S, S) uint8 -> (1, size, size) float32."""
        return normalize(self.transform(image))

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.one(image), self.one(image)
