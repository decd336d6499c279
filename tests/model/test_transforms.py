"""Views: shapes, normalisation, no colour augmentations, clean view deterministic."""

import numpy as np
import torch

from core.config import AugmentConfig
from core.model.transforms import MEAN, STD, XRayViews, eval_view, to_uint8_tensor


def test_eval_view_shape_and_normalisation():
    pixels = np.full((50, 70), 0.5, np.float32)
    view = eval_view(pixels, 32)
    assert view.shape == (1, 32, 32)
    assert torch.allclose(view, torch.full_like(view, (127.5 / 255 - MEAN) / STD), atol=0.02)
    assert torch.equal(eval_view(pixels, 32), view)


def test_two_views_differ_and_keep_shape():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    image = to_uint8_tensor(rng.random((80, 80)).astype(np.float32), 72)
    v1, v2 = XRayViews(64, AugmentConfig())(image)
    assert v1.shape == v2.shape == (1, 64, 64)
    assert not torch.equal(v1, v2)


def test_no_colour_or_grayscale_augmentations():
    names = [type(t).__name__ for t in XRayViews(64).transform.transforms]
    assert "RandomGrayscale" not in names
    jitter = [t for t in XRayViews(64).transform.transforms if type(t).__name__ == "ColorJitter"]
    assert jitter and jitter[0].hue is None and jitter[0].saturation is None
    assert "RandomHorizontalFlip" not in names  # laterality is kept unless asked for
    flipped = XRayViews(64, AugmentConfig(hflip=True)).transform.transforms
    assert "RandomHorizontalFlip" in [type(t).__name__ for t in flipped]
